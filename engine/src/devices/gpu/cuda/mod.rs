//! NVIDIA GPUs through CUDA: the driver, NVRTC and cuBLAS, all loaded at run time (cudarc
//! with dynamic loading), so the engine builds with no toolkit and CUDA is simply absent
//! where there is no driver. Kernels are the generated programs' CUDA C, compiled by the
//! system's NVRTC for the device's own architecture (PTX the driver accepts) and cached by
//! source; matrix products go to cuBLAS. Everything runs in order on one stream per GPU:
//! memory comes from the driver's stream-ordered allocator, freed memory is reused by later
//! allocations, and a kernel's parameter words are copied into a ring just before it runs.
//!
//! Not yet run on a GPU: this backend has been compiled and reviewed only; `bench/gpu.sh`
//! runs the op suite on it on a GPU machine.

mod nvrtc;

pub use nvrtc::{Nvrtc, DEFAULT_ARCH};

use super::{workgroups, Gemm, GpuBuffer, GpuOptions, WORKGROUP_SIZE};
use crate::devices::{DeviceError, DeviceInfo, DeviceKind, CUDA_ENTRY};
use cudarc::cublas::{sys as blas_sys, CudaBlas};
use cudarc::driver::{result, sys, CudaContext, CudaEvent, CudaFunction, CudaStream};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The NVIDIA GPUs the driver finds, numbered from `/device:GPU:0`; none without a driver,
/// cuBLAS or NVRTC (each absence logged once).
pub(super) fn discover(options: &GpuOptions) -> Vec<(DeviceInfo, CudaGpu)> {
    // SAFETY: only tries to open the library.
    if !unsafe { sys::is_culib_present() } {
        tracing::debug!("no CUDA driver library: no CUDA GPUs");
        return Vec::new();
    }
    let count = match CudaContext::device_count() {
        Ok(n) => usize::try_from(n).unwrap_or(0),
        Err(e) => {
            tracing::debug!("the CUDA driver finds no GPU: {e}");
            return Vec::new();
        }
    };
    if count == 0 {
        return Vec::new();
    }
    // SAFETY: only tries to open the library.
    if !unsafe { blas_sys::is_culib_present() } {
        tracing::warn!("CUDA GPUs found but no cuBLAS library: they are not used through CUDA");
        return Vec::new();
    }
    let nvrtc = match Nvrtc::load() {
        Ok(n) => Arc::new(n),
        Err(e) => {
            tracing::warn!("CUDA GPUs found but no NVRTC to compile kernels: {e}");
            return Vec::new();
        }
    };
    let mut devices = Vec::new();
    for ordinal in 0..count {
        match CudaGpu::open(ordinal, devices.len(), nvrtc.clone(), options) {
            Ok(device) => devices.push(device),
            Err(e) => tracing::warn!("CUDA GPU {ordinal} unusable: {e}"),
        }
    }
    devices
}

/// Device memory from the stream-ordered allocator, freed in stream order when the last
/// tensor holding it goes: work already queued that reads it still runs first.
#[derive(Debug, Clone)]
pub struct CudaBuffer {
    memory: Arc<Allocation>,
}

struct Allocation {
    ptr: sys::CUdeviceptr,
    bytes: u64,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CUDA memory of {} bytes", self.bytes)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        let freed = self.stream.context().bind_to_thread().and_then(|()| {
            // SAFETY: the pointer came from `malloc_async` on this stream and is freed once,
            // here, after every use queued on the stream.
            unsafe { result::free_async(self.ptr, self.stream.cu_stream()) }
        });
        if let Err(e) = freed {
            tracing::warn!("freeing {} bytes of CUDA memory: {e}", self.bytes);
        }
    }
}

impl CudaBuffer {
    pub fn size(&self) -> u64 {
        self.memory.bytes
    }

    fn ptr(&self) -> sys::CUdeviceptr {
        self.memory.ptr
    }
}

/// Bytes of the ring that parameter words are copied through.
const PARAM_RING_BYTES: u64 = 1 << 20;
/// Each launch's words start on this boundary.
const PARAM_ALIGN: u64 = 256;

/// One NVIDIA GPU: its context, stream, cuBLAS handle and compiled kernels.
pub(super) struct CudaGpu {
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// A cuBLAS handle is used by one thread at a time.
    blas: Mutex<CudaBlas>,
    nvrtc: Arc<Nvrtc>,
    /// `compute_90` for an H100: PTX for the device's own architecture.
    arch: String,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// The parameter ring and the next free offset in it. The stream runs in order, so a
    /// copy into the ring waits for every kernel queued before it: no word is overwritten
    /// while a kernel may still read it.
    params: Mutex<(CudaBuffer, u64)>,
    /// The last step's end, which the next step's end waits for.
    last_step: Mutex<Option<CudaEvent>>,
    /// The traced step under way: each timed kernel's node and its start and end events.
    trace: Mutex<Option<CudaTrace>>,
}

/// Kernels of one traced step that get timed.
const MAX_TRACED: usize = 2048;

struct CudaTrace {
    /// The thread whose kernels are timed.
    thread: std::thread::ThreadId,
    node: usize,
    kernels: Vec<(usize, CudaEvent, CudaEvent)>,
}

impl CudaGpu {
    fn open(
        ordinal: usize,
        index: usize,
        nvrtc: Arc<Nvrtc>,
        options: &GpuOptions,
    ) -> Result<(DeviceInfo, CudaGpu), String> {
        let ctx = CudaContext::new(ordinal).map_err(|e| e.to_string())?;
        let (major, minor) = ctx.compute_capability().map_err(|e| e.to_string())?;
        let total = ctx.total_mem().map_err(|e| e.to_string())? as u64;
        let description = ctx.name().map_err(|e| e.to_string())?;
        let stream = ctx.new_stream().map_err(|e| e.to_string())?;
        keep_freed_memory(&ctx)?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| e.to_string())?;
        if options.tf32 {
            // SAFETY: the handle is valid; the mode is one of cuBLAS's own constants.
            unsafe {
                blas_sys::cublasSetMathMode(
                    *blas.handle(),
                    blas_sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
                )
            }
            .result()
            .map_err(|e| e.to_string())?;
        }
        let name = format!("/device:GPU:{index}");
        let ring = alloc_on(&stream, PARAM_RING_BYTES).map_err(|e| e.to_string())?;
        let info = DeviceInfo {
            name: name.clone(),
            kind: DeviceKind::Gpu,
            description,
            backend: "cuda".into(),
            // Kernels index elements with 32-bit words.
            max_buffer_bytes: total.min(u64::from(u32::MAX) * 4),
            memory_bytes: total,
            software: false,
        };
        let gpu = CudaGpu {
            name,
            ctx,
            stream,
            blas: Mutex::new(blas),
            nvrtc,
            arch: format!("compute_{major}{minor}"),
            functions: Mutex::default(),
            params: Mutex::new((ring, 0)),
            last_step: Mutex::default(),
            trace: Mutex::default(),
        };
        Ok((info, gpu))
    }

    fn failed(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::failed(&self.name, message)
    }

    fn bind(&self) -> Result<(), DeviceError> {
        self.ctx.bind_to_thread().map_err(|e| self.failed(e))
    }

    /// Device memory of `bytes` bytes whose contents the caller writes.
    pub(super) fn alloc(&self, bytes: u64) -> Result<CudaBuffer, DeviceError> {
        self.bind()?;
        alloc_on(&self.stream, bytes).map_err(|e| self.failed(format!("out of memory: {e}")))
    }

    /// New device memory holding `bytes`.
    pub(super) fn upload(&self, bytes: &[u8]) -> Result<CudaBuffer, DeviceError> {
        let buffer = self.alloc(bytes.len() as u64)?;
        if !bytes.is_empty() {
            // SAFETY: the allocation holds at least `bytes.len()` bytes; a copy from pageable
            // memory is staged before the call returns, so `bytes` may go right after.
            unsafe { result::memcpy_htod_async(buffer.ptr(), bytes, self.stream.cu_stream()) }
                .map_err(|e| self.failed(e))?;
        }
        Ok(buffer)
    }

    /// The first `bytes` bytes of `buffer`, once the work queued before has run.
    pub(super) fn download(&self, buffer: &GpuBuffer, bytes: u64) -> Result<Vec<u8>, DeviceError> {
        let buffer = self.own(buffer)?;
        if bytes > buffer.size() {
            return Err(self.failed(format!(
                "a download of {bytes} bytes from a buffer of {}",
                buffer.size()
            )));
        }
        self.bind()?;
        let len = usize::try_from(bytes).map_err(|e| self.failed(e))?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| self.failed(format!("no host memory for {bytes} bytes")))?;
        data.resize(len, 0u8);
        if len > 0 {
            // SAFETY: `data` holds `len` bytes and stays alive until the stream is
            // synchronised below; the buffer holds at least as many.
            unsafe { result::memcpy_dtoh_async(&mut data, buffer.ptr(), self.stream.cu_stream()) }
                .map_err(|e| self.failed(e))?;
        }
        self.stream.synchronize().map_err(|e| self.failed(e))?;
        Ok(data)
    }

    fn own<'a>(&self, buffer: &'a GpuBuffer) -> Result<&'a CudaBuffer, DeviceError> {
        match buffer {
            // Another session's device (its own stream) has no ordering with this one's.
            GpuBuffer::Cuda(b) if Arc::ptr_eq(&b.memory.stream, &self.stream) => Ok(b),
            GpuBuffer::Cuda(_) => Err(self.failed("a buffer of another CUDA device or session")),
            GpuBuffer::Vulkan(_) => Err(self.failed("a Vulkan buffer given to a CUDA GPU")),
        }
    }

    /// The kernel compiled from `source` (CUDA C), compiled and loaded on first use (then
    /// `true`).
    fn function(&self, source: &str) -> Result<(CudaFunction, bool), DeviceError> {
        let mut cache = self
            .functions
            .lock()
            .map_err(|_| self.failed("kernel cache poisoned"))?;
        if let Some(f) = cache.get(source) {
            return Ok((f.clone(), false));
        }
        let ptx = self.nvrtc.compile(source, &self.arch)?;
        let module = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| {
                self.failed(format!(
                    "the driver rejects a generated kernel's PTX ({e}); NVRTC {:?} may be newer \
                     than the driver",
                    self.nvrtc.version()
                ))
            })?;
        let function = module
            .load_function(CUDA_ENTRY)
            .map_err(|e| self.failed(e))?;
        cache.insert(source.to_string(), function.clone());
        Ok((function, true))
    }

    /// Copies `params` into the ring (whose guard the caller holds until its kernel is
    /// queued, so no other launch wraps the ring over these words first); the device address
    /// of the copy.
    fn stage_params(
        &self,
        ring: &mut (CudaBuffer, u64),
        params: &[u32],
    ) -> Result<sys::CUdeviceptr, DeviceError> {
        let params = if params.is_empty() {
            &[0u32][..]
        } else {
            params
        };
        let bytes = (params.len() as u64) * 4;
        if bytes > PARAM_RING_BYTES {
            return Err(self.failed(format!("{} parameter words for one kernel", params.len())));
        }
        let (buffer, next) = ring;
        if *next + bytes > PARAM_RING_BYTES {
            *next = 0;
        }
        let at = buffer.ptr() + *next;
        *next = (*next + bytes).next_multiple_of(PARAM_ALIGN);
        // SAFETY: `at .. at + bytes` lies inside the ring; the stream orders this copy after
        // every kernel queued before it, so none of them still reads these bytes.
        unsafe { result::memcpy_htod_async(at, params, self.stream.cu_stream()) }
            .map_err(|e| self.failed(e))?;
        Ok(at)
    }

    /// Queues a generated kernel over `threads` threads, [`WORKGROUP_SIZE`] per block;
    /// whether it was compiled for this launch.
    pub(super) fn launch(
        &self,
        source: &str,
        buffers: &[&GpuBuffer],
        params: &[u32],
        threads: usize,
    ) -> Result<bool, DeviceError> {
        let (x, y) = workgroups(threads, 65_535)
            .ok_or_else(|| self.failed(format!("{threads} threads are too many for one kernel")))?;
        self.bind()?;
        let (function, compiled) = self.function(source)?;
        let mut args: Vec<sys::CUdeviceptr> = buffers
            .iter()
            .map(|b| self.own(b).map(CudaBuffer::ptr))
            .collect::<Result<_, _>>()?;
        let mut ring = self
            .params
            .lock()
            .map_err(|_| self.failed("parameter ring poisoned"))?;
        args.push(self.stage_params(&mut ring, params)?);
        let mut launch = self.stream.launch_builder(&function);
        for arg in &args {
            launch.arg(arg);
        }
        let config = LaunchConfig {
            grid_dim: (x, y, 1),
            block_dim: (WORKGROUP_SIZE, 1, 1),
            shared_mem_bytes: 0,
        };
        self.timed(|| {
            // SAFETY: the generated kernel takes one pointer per buffer and one to its
            // parameter words, in this order; every buffer outlives the kernel (frees are
            // stream-ordered) and the kernel checks its element against the length in its
            // parameters.
            unsafe { launch.launch(config) }
                .map(|_| ())
                .map_err(|e| self.failed(e))
        })?;
        Ok(compiled)
    }

    /// `c = op(a) @ op(b)` for row-major matrices, in cuBLAS (column-major): computed as
    /// `c^T = op(b)^T @ op(a)^T`, which needs no copies.
    pub(super) fn gemm(
        &self,
        a: &GpuBuffer,
        b: &GpuBuffer,
        c: &GpuBuffer,
        shape: &Gemm,
    ) -> Result<(), DeviceError> {
        let &Gemm {
            batch,
            m,
            n,
            k,
            transpose_a,
            transpose_b,
        } = shape;
        let int = |v: usize| {
            i32::try_from(v).map_err(|_| self.failed(format!("{v} is too large for cuBLAS")))
        };
        let long = |v: usize| {
            i64::try_from(v).map_err(|_| self.failed(format!("{v} is too large for cuBLAS")))
        };
        let need = |rows: usize, cols: usize| {
            rows.checked_mul(cols)
                .and_then(|e| e.checked_mul(batch))
                .and_then(|e| e.checked_mul(4))
                .map(|bytes| bytes as u64)
                .ok_or_else(|| self.failed("a matrix product's size overflows"))
        };
        let (a, b, c) = (self.own(a)?, self.own(b)?, self.own(c)?);
        if need(m, k)? > a.size() || need(k, n)? > b.size() || need(m, n)? > c.size() {
            return Err(self.failed("a matrix product's operands are smaller than its shape"));
        }
        // Each product fits its buffer (checked above), so these do not overflow.
        let (k_n, m_k, m_n) = (k * n, m * k, m * n);
        self.bind()?;
        if k == 0 {
            // An empty sum: zeros (cuBLAS rejects the leading dimension 0 that k = 0 gives).
            let bytes = need(m, n)?;
            // SAFETY: `c` holds at least `bytes` bytes (checked above), on this stream.
            return unsafe {
                result::memset_d8_async(c.ptr(), 0, bytes as usize, self.stream.cu_stream())
            }
            .map_err(|e| self.failed(e));
        }
        let op = |t: bool| {
            if t {
                blas_sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas_sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let lda = if transpose_a { m } else { k };
        let ldb = if transpose_b { k } else { n };
        let (alpha, beta) = (1.0f32, 0.0f32);
        let blas = self
            .blas
            .lock()
            .map_err(|_| self.failed("cuBLAS handle poisoned"))?;
        let (m, n, k, lda, ldb, batch) =
            (int(m)?, int(n)?, int(k)?, int(lda)?, int(ldb)?, int(batch)?);
        let strides = (long(k_n)?, long(m_k)?, long(m_n)?);
        self.timed(|| {
            // SAFETY: the three buffers hold `batch` matrices of the sizes checked above; alpha
            // and beta are host values that outlive the call; the handle runs on this stream.
            unsafe {
                cudarc::cublas::result::sgemm_strided_batched(
                    *blas.handle(),
                    op(transpose_b),
                    op(transpose_a),
                    n,
                    m,
                    k,
                    &alpha,
                    b.ptr() as *const f32,
                    ldb,
                    strides.0,
                    a.ptr() as *const f32,
                    lda,
                    strides.1,
                    &beta,
                    c.ptr() as *mut f32,
                    n,
                    strides.2,
                    batch,
                )
            }
            .map_err(|e| self.failed(format!("cuBLAS sgemm: {e}")))
        })
    }

    /// Runs `queue` (which queues work on the stream), between timing events in a traced
    /// step.
    fn timed<T>(&self, queue: impl FnOnce() -> Result<T, DeviceError>) -> Result<T, DeviceError> {
        let mut trace = self
            .trace
            .lock()
            .map_err(|_| self.failed("trace poisoned"))?;
        // Kernels past the cap of one traced step go untimed (as on Vulkan).
        let me = std::thread::current().id();
        let Some(trace) =
            (trace.as_mut()).filter(|t| t.thread == me && t.kernels.len() < MAX_TRACED)
        else {
            return queue();
        };
        let event = || {
            self.stream
                .record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| self.failed(e))
        };
        let start = event()?;
        let out = queue()?;
        trace.kernels.push((trace.node, start, event()?));
        Ok(out)
    }

    /// Starts timing the kernels that `thread` queues.
    pub(super) fn trace_begin(&self, thread: std::thread::ThreadId) {
        if let Ok(mut trace) = self.trace.lock() {
            *trace = Some(CudaTrace {
                thread,
                node: 0,
                kernels: Vec::new(),
            });
        }
    }

    /// The node whose kernels are queued next.
    pub(super) fn trace_node(&self, node: usize) {
        if let Ok(mut trace) = self.trace.lock() {
            if let Some(trace) = trace.as_mut() {
                trace.node = node;
            }
        }
    }

    /// Stops timing; each timed kernel's node and GPU time in microseconds, once all have run.
    pub(super) fn trace_end(&self) -> Result<Vec<(usize, f64)>, DeviceError> {
        let Some(trace) = self
            .trace
            .lock()
            .map_err(|_| self.failed("trace poisoned"))?
            .take()
        else {
            return Ok(Vec::new());
        };
        self.synchronize()?;
        (trace.kernels.into_iter())
            .map(|(node, start, end)| {
                let ms = start.elapsed_ms(&end).map_err(|e| self.failed(e))?;
                Ok((node, f64::from(ms) * 1e3))
            })
            .collect()
    }

    /// Ends a step: marks its end on the stream, then waits for the previous step's end, so
    /// one step runs on the GPU while the host prepares the next.
    pub(super) fn end_step(&self) -> Result<(), DeviceError> {
        self.bind()?;
        let event = self
            .stream
            .record_event(Some(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING))
            .map_err(|e| self.failed(e))?;
        let previous = self
            .last_step
            .lock()
            .map_err(|_| self.failed("step queue poisoned"))?
            .replace(event);
        if let Some(previous) = previous {
            previous.synchronize().map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Waits for everything queued.
    pub(super) fn synchronize(&self) -> Result<(), DeviceError> {
        self.bind()?;
        self.stream.synchronize().map_err(|e| self.failed(e))
    }
}

impl Drop for CudaGpu {
    fn drop(&mut self) {
        // cuBLAS destroys its handle (and panics if that fails) in the context made current
        // here, whichever thread drops the device.
        if let Err(e) = self.ctx.bind_to_thread() {
            tracing::warn!("closing {}: {e}", self.name);
        }
    }
}

/// Memory of `bytes` bytes (at least a word) from `stream`'s allocator.
fn alloc_on(stream: &Arc<CudaStream>, bytes: u64) -> Result<CudaBuffer, result::DriverError> {
    let bytes = bytes.max(4).next_multiple_of(4);
    let size = usize::try_from(bytes).unwrap_or(usize::MAX);
    // SAFETY: the stream is live; the memory is written before it is read (kernels write
    // their outputs whole, uploads copy in first).
    let ptr = unsafe { result::malloc_async(stream.cu_stream(), size) }?;
    Ok(CudaBuffer {
        memory: Arc::new(Allocation {
            ptr,
            bytes,
            stream: stream.clone(),
        }),
    })
}

/// Keeps memory freed into the device's default pool for later allocations instead of
/// returning it to the driver at each synchronisation (the default), which would make every
/// step allocate afresh.
fn keep_freed_memory(ctx: &Arc<CudaContext>) -> Result<(), String> {
    let mut threshold = u64::MAX;
    // SAFETY: the device comes from a live context; the attribute takes a u64.
    unsafe {
        let pool =
            result::device::get_default_mem_pool(ctx.cu_device()).map_err(|e| e.to_string())?;
        result::mem_pool::set_attribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
        .map_err(|e| e.to_string())
    }
}
