//! GPU timestamps around each kernel of a traced step (`Session::run_traced`): the time each
//! kernel took on the GPU, not the moment the host recorded it. Needs the adapter's timestamp
//! queries; without them the executor waits for each traced kernel instead.

use super::buffers;

/// Kernels of one traced step that get timestamps; later ones go untimed.
pub(super) const MAX_TRACED: u32 = 2048;

/// The query set that kernels write their start and end ticks into.
pub(super) struct Timestamps {
    query_set: wgpu::QuerySet,
    /// Nanoseconds per tick.
    period_ns: f64,
}

/// The traced step under way: which node each timed kernel belongs to.
#[derive(Debug, Default)]
pub(super) struct Trace {
    /// The thread whose kernels are timed, while a traced step runs.
    pub thread: Option<std::thread::ThreadId>,
    /// The node whose kernels are being recorded.
    pub node: usize,
    /// By timed kernel, in order: its node.
    pub kernels: Vec<usize>,
}

impl Timestamps {
    /// Timestamps on `device`, if it has the feature.
    pub(super) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Timestamps> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel times"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_TRACED,
        });
        Some(Timestamps {
            query_set,
            period_ns: f64::from(queue.get_timestamp_period()),
        })
    }

    /// Where kernel `index` of the traced step writes its start and end.
    pub(super) fn writes(&self, index: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(2 * index),
            end_of_pass_write_index: Some(2 * index + 1),
        }
    }

    /// The durations in microseconds of the first `count` timed kernels, once they have run.
    pub(super) fn read(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        count: u32,
    ) -> Result<Vec<f64>, String> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let bytes = u64::from(2 * count) * 8;
        let resolved = buffers::query_target(device, bytes)?;
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.resolve_query_set(&self.query_set, 0..2 * count, resolved.raw(), 0);
        queue.submit([encoder.finish()]);
        let data = resolved.read(device, queue, bytes)?;
        let ticks: Vec<u64> = data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(ticks
            .chunks_exact(2)
            .map(|pair| pair[1].saturating_sub(pair[0]) as f64 * self.period_ns / 1e3)
            .collect())
    }
}
