//! A step's values where they live: on the host, on a GPU, or both once copied, so a value
//! that several nodes on the other side read crosses only once.

use crate::devices::gpu::GpuDevice;
use crate::devices::{Device, DeviceTensor};
use crate::graph::{Shape, TypeShape};
use crate::kernels::BufferPool;
use crate::tensor::Tensor;
use std::sync::Arc;

#[derive(Default)]
pub(crate) struct Value {
    host: Option<Tensor>,
    gpu: Option<(Arc<GpuDevice>, DeviceTensor)>,
}

impl Value {
    pub(crate) fn host(tensor: Tensor) -> Value {
        Value {
            host: Some(tensor),
            gpu: None,
        }
    }

    /// A GPU kernel's output: on the GPU, or on the host where the kernel left it there (an
    /// i64 result, which GPUs do not hold).
    pub(crate) fn gpu(device: Arc<GpuDevice>, tensor: DeviceTensor) -> Value {
        match tensor.storage {
            crate::devices::Storage::Host(t) => Value::host(t),
            _ => Value {
                host: None,
                gpu: Some((device, tensor)),
            },
        }
    }

    /// The value's dtype and shape, wherever it lives.
    pub(crate) fn type_shape(&self) -> Option<TypeShape> {
        let (dtype, shape) = match (&self.host, &self.gpu) {
            (Some(t), _) => (t.dtype(), t.shape()),
            (None, Some((_, t))) => (t.dtype, t.shape.as_slice()),
            (None, None) => return None,
        };
        Some(TypeShape::new(dtype, Shape::known(shape)))
    }

    /// The value on the host, copied back from its GPU on first need.
    pub(crate) fn on_host(&mut self) -> Result<Tensor, String> {
        if let Some(t) = &self.host {
            return Ok(t.clone());
        }
        let (device, tensor) = self.gpu.as_ref().ok_or("the value was never computed")?;
        let t = device.download(tensor).map_err(|e| e.to_string())?;
        self.host = Some(t.clone());
        Ok(t)
    }

    /// The value on `device`, copied there on first need.
    pub(crate) fn on_gpu(&mut self, device: &Arc<GpuDevice>) -> Result<DeviceTensor, String> {
        if let Some((d, t)) = &self.gpu {
            if Arc::ptr_eq(d, device) {
                return Ok(t.clone());
            }
        }
        let host = self.on_host()?;
        let t = device.upload(&host).map_err(|e| e.to_string())?;
        self.gpu = Some((device.clone(), t.clone()));
        Ok(t)
    }

    /// The value as a GPU kernel on `device` takes it: there when GPUs hold its dtype, else
    /// on the host (an i64 step count that an optimizer's update reads).
    pub(crate) fn for_gpu(&mut self, device: &Arc<GpuDevice>) -> Result<DeviceTensor, String> {
        let dtype = match (&self.host, &self.gpu) {
            (Some(t), _) => t.dtype(),
            (None, Some((_, t))) => t.dtype,
            (None, None) => return Err("the value was never computed".into()),
        };
        if crate::kernels::gpu::expr::Scalar::of(dtype).is_some() {
            return self.on_gpu(device);
        }
        self.as_host_input()
    }

    /// The value on the host, as a GPU kernel takes an input it reads there.
    pub(crate) fn as_host_input(&mut self) -> Result<DeviceTensor, String> {
        let host = self.on_host()?;
        Ok(DeviceTensor {
            dtype: host.dtype(),
            shape: host.shape().to_vec(),
            storage: crate::devices::Storage::Host(host),
        })
    }

    /// Gives the value's buffers back for later steps: the host one to `pool` when
    /// `to_pool`, the GPU one to its device.
    pub(crate) fn release(self, pool: &mut BufferPool, to_pool: bool) {
        if let (Some(t), true) = (self.host, to_pool) {
            pool.recycle(t);
        }
        if let Some((device, t)) = self.gpu {
            device.recycle(t);
        }
    }
}
