//! Vulkan buffers and the pool that keeps them across steps, by size, so a repeated step
//! allocates nothing new.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};

/// Bytes on a GPU, shared by the tensors that hold them.
#[derive(Debug, Clone)]
pub struct VulkanBuffer {
    buffer: Arc<wgpu::Buffer>,
}

impl VulkanBuffer {
    pub(super) fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Size in bytes (at least 4: empty tensors get a word so that they can be bound).
    pub fn size(&self) -> u64 {
        self.buffer.size()
    }

    /// Copies the first `bytes` bytes back to the host, waiting for the work that writes them.
    pub(super) fn read(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        bytes: u64,
    ) -> Result<Vec<u8>, String> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("download"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.buffer, 0, &staging, 0, bytes);
        queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        rx.recv()
            .map_err(|_| "the device dropped a download".to_string())?
            .map_err(|e| e.to_string())?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| e.to_string())?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}

/// Free buffers by size. A few of each size are kept; the rest go back to the driver.
#[derive(Debug, Default)]
pub(super) struct Pool {
    free: Mutex<HashMap<u64, Vec<Arc<wgpu::Buffer>>>>,
}

/// Buffers of one size kept for reuse.
const KEEP_PER_SIZE: usize = 8;

impl Pool {
    /// A buffer of `bytes` bytes (rounded up to a word), reused when one is free.
    pub(super) fn take(&self, device: &wgpu::Device, bytes: u64) -> Result<VulkanBuffer, String> {
        let size = bytes.max(4).next_multiple_of(4);
        let reused = self
            .free
            .lock()
            .map_err(|_| "buffer pool poisoned".to_string())?
            .get_mut(&size)
            .and_then(Vec::pop);
        match reused {
            Some(buffer) => Ok(VulkanBuffer { buffer }),
            None => create(device, bytes),
        }
    }

    /// Keeps `buffer` for a later `take` if no tensor still holds it.
    pub(super) fn give_back(&self, buffer: VulkanBuffer) {
        if Arc::strong_count(&buffer.buffer) != 1 {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            let list = free.entry(buffer.buffer.size()).or_default();
            if list.len() < KEEP_PER_SIZE {
                list.push(buffer.buffer);
            }
        }
    }
}

/// A new buffer of `bytes` bytes (rounded up to a word), that no command has used yet.
pub(super) fn create(device: &wgpu::Device, bytes: u64) -> Result<VulkanBuffer, String> {
    let size = bytes.max(4).next_multiple_of(4);
    let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(format!("cannot allocate {size} bytes: {e}"));
    }
    Ok(VulkanBuffer {
        buffer: Arc::new(buffer),
    })
}

/// A buffer that query results are resolved into, then read back.
pub(super) fn query_target(device: &wgpu::Device, bytes: u64) -> Result<VulkanBuffer, String> {
    let size = bytes.max(8).next_multiple_of(8);
    let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("query results"),
        size,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(format!("cannot allocate {size} bytes: {e}"));
    }
    Ok(VulkanBuffer {
        buffer: Arc::new(buffer),
    })
}
