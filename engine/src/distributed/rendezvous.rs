//! Where tensors cross between workers. A `_Send` node publishes its value in this process's
//! table under `KEY;STEP`; the `_Recv` node of another worker pulls it with RecvTensor, which
//! waits here until it is published. Keys carry the sender's incarnation, so a restarted
//! worker is noticed instead of answering for its former self.

use super::peer::{client, runtime};
use super::{bulk, precision};
use crate::service::auth::PeerCredentials;
use crate::service::chunks::CHUNK_BYTES;
use crate::service::proto::recv_tensor_chunk::Part;
use crate::service::proto::{self, WirePrecision};
use crate::service::wire::dtype_from_proto;
use crate::tensor::{MemoryBudget, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tonic::Status;

/// Values nobody took (their step failed elsewhere) are dropped after this long.
const STALE: Duration = Duration::from_secs(600);

/// Aborted step ranges remembered at most.
const MAX_ABORTED: usize = 4096;

struct Slot {
    value: Option<Tensor>,
    notify: Arc<Notify>,
    at: Instant,
}

fn table() -> MutexGuard<'static, HashMap<String, Slot>> {
    static TABLE: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Steps aborted here: a graph key id, a range of steps (first, last), when, and why. Kept
/// as long as stale values; few at a time (one per failed step or repeated run).
type AbortedSteps = Vec<(String, (u64, u64), Instant, String)>;

fn aborted() -> MutexGuard<'static, AbortedSteps> {
    static ABORTED: OnceLock<Mutex<AbortedSteps>> = OnceLock::new();
    ABORTED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The key's graph field: `SRC;INCARNATION;DST;GRAPH;TENSOR`.
fn key_graph(key: &str) -> &str {
    key.split(';').nth(3).unwrap_or_default()
}

/// Why step `step` of the key's graph was aborted, if it was.
fn abort_reason(key: &str, step: u64) -> Option<String> {
    let graph = key_graph(key);
    (aborted().iter())
        .find(|(g, (first, last), _, _)| g == graph && (*first..=*last).contains(&step))
        .map(|(_, _, _, why)| why.clone())
}

/// Marks steps `first .. first + count` (at least `first`) of graph `graph` aborted (another
/// task's part failed or was cancelled): RecvTensor calls waiting for their values fail now,
/// later ones at once, and the values their sends already published are dropped.
pub fn abort(graph: &str, first: u64, count: u64, reason: &str) {
    let last = first.saturating_add(count.max(1) - 1);
    {
        let mut steps = aborted();
        let now = Instant::now();
        steps.retain(|(_, _, at, _)| now.duration_since(*at) < STALE);
        // Aborts come one per failed step: a flood of them forgets the oldest first.
        if steps.len() >= MAX_ABORTED {
            steps.remove(0);
        }
        steps.push((graph.to_string(), (first, last), now, reason.to_string()));
    }
    let mut slots = table();
    slots.retain(|k, slot| {
        let step = (k.rsplit_once(';')).and_then(|(_, s)| s.parse::<u64>().ok());
        let ours = step.is_some_and(|s| (first..=last).contains(&s)) && key_graph(k) == graph;
        if ours {
            slot.notify.notify_waiters();
        }
        !ours || slot.value.is_none()
    });
}

/// This process's incarnation: new at each start, so keys for a former one are refused.
pub fn incarnation() -> u64 {
    static INCARNATION: OnceLock<u64> = OnceLock::new();
    *INCARNATION.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut z = nanos ^ u64::from(std::process::id()).rotate_left(29);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (z ^ (z >> 31)) & 0xFFFF_FFFF_FFFF
    })
}

/// The key's incarnation field: `SRC;INCARNATION;DST;GRAPH;TENSOR`.
fn key_incarnation(key: &str) -> Option<u64> {
    u64::from_str_radix(key.split(';').nth(1)?, 16).ok()
}

/// Publishes the value a `_Send` node computed in step `step`.
pub fn publish(key: &str, step: u64, value: Tensor) {
    if abort_reason(key, step).is_some() {
        // Nobody will take it: the step was aborted.
        return;
    }
    let mut slots = table();
    let now = Instant::now();
    slots.retain(|_, s| s.value.is_none() || now.duration_since(s.at) < STALE);
    let slot = slots
        .entry(format!("{key};{step}"))
        .or_insert_with(|| Slot {
            value: None,
            notify: Arc::new(Notify::new()),
            at: now,
        });
    slot.value = Some(value);
    slot.at = now;
    slot.notify.notify_waiters();
}

/// Waits up to `timeout` for the value published under `key` in `step`, and takes it.
pub async fn take(key: &str, step: u64, timeout: Duration) -> Result<Tensor, Status> {
    if key_incarnation(key) != Some(incarnation()) {
        return Err(Status::failed_precondition(format!(
            "RecvTensor '{key}': this worker is incarnation {:x}; it restarted since the key was \
             made, and the values of its former self are gone",
            incarnation()
        )));
    }
    let full = format!("{key};{step}");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(reason) = abort_reason(key, step) {
            table().remove(&full);
            return Err(Status::aborted(format!(
                "RecvTensor '{key}' step {step}: the step was aborted ({reason})"
            )));
        }
        let notify: Arc<Notify> = {
            let mut slots = table();
            let slot = slots.entry(full.clone()).or_insert_with(|| Slot {
                value: None,
                notify: Arc::new(Notify::new()),
                at: Instant::now(),
            });
            if let Some(value) = slot.value.take() {
                slots.remove(&full);
                return Ok(value);
            }
            slot.notify.clone()
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Published (or aborted) between the look and the wait: look again.
        if table().get(&full).is_none_or(|s| s.value.is_some()) || abort_reason(key, step).is_some()
        {
            continue;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            // The slot goes unless a value arrived meanwhile or another call still waits on
            // it (which holds the third reference to its notifier): a key nobody publishes
            // leaves nothing behind.
            let mut slots = table();
            let unused = (slots.get(&full))
                .is_some_and(|s| s.value.is_none() && Arc::strong_count(&s.notify) <= 2);
            if unused {
                slots.remove(&full);
            }
            return Err(Status::deadline_exceeded(format!(
                "RecvTensor '{key}' step {step}: not produced within {} ms",
                timeout.as_millis()
            )));
        }
    }
}

/// Forgets the values left under `keys`, in every step (their graph was cleaned up).
pub fn forget_keys(keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let keys: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
    // Slots without a value belong to a RecvTensor still waiting: its deadline ends it.
    table().retain(|k, slot| {
        let key = k.rsplit_once(';').map_or(k.as_str(), |(key, _step)| key);
        slot.value.is_none() || !keys.contains(key)
    });
    bulk::forget_keys(&keys);
}

fn header(value: &Tensor, encoder: &precision::Encoder) -> proto::RecvTensorHeader {
    proto::RecvTensorHeader {
        dtype: crate::service::wire::dtype_to_proto(value.dtype()) as i32,
        dims: value.shape().iter().map(|&d| d as u64).collect(),
        precision: encoder.precision as i32,
        scale: encoder.scale,
        wire_bytes: encoder.wire_bytes() as u64,
        bulk_port: 0,
        bulk_ticket: Default::default(),
    }
}

/// The header of a payload large enough for the bulk channel, which then holds it for the
/// ticket the header carries; None for a small one, or when the bulk channel cannot open
/// (the payload then streams over gRPC).
pub fn bulk_header(
    value: &Tensor,
    precision: WirePrecision,
    ip: std::net::IpAddr,
    key: &str,
    tls: Option<&std::sync::Arc<rustls::ServerConfig>>,
) -> Option<proto::RecvTensorHeader> {
    if precision::wire_bytes(value, precision) < bulk::BULK_MIN_BYTES {
        return None;
    }
    let port = match bulk::port(ip, tls) {
        Ok(port) => port,
        Err(e) => {
            // The port's failure is kept, so this comes with every large tensor: say it once.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| tracing::warn!("{e}; large tensors stream over gRPC"));
            return None;
        }
    };
    // The encoder (its int8 scale worked out once) waits with the ticket.
    let encoder = precision::Encoder::new(value, precision, bulk::PIECE_BYTES);
    let mut header = header(value, &encoder);
    header.bulk_port = u32::from(port);
    header.bulk_ticket = bulk::offer(encoder, key).to_le_bytes().to_vec().into();
    Some(header)
}

/// The header and data pieces RecvTensor streams for `value`, the data encoded lazily as the
/// stream is read.
pub fn chunks(
    value: &Tensor,
    precision: WirePrecision,
) -> impl Iterator<Item = proto::RecvTensorChunk> + Send + 'static {
    let encoder = precision::Encoder::new(value, precision, CHUNK_BYTES);
    let header = header(value, &encoder);
    std::iter::once(proto::RecvTensorChunk {
        part: Some(Part::Header(header)),
    })
    .chain(encoder.map(|piece| proto::RecvTensorChunk {
        part: Some(Part::Data(piece)),
    }))
}

/// What bounds a fetch: the memory budget a peer's header is checked against before
/// anything is reserved, and the token the call carries (`None`: the environment's).
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits<'a> {
    pub budget: MemoryBudget,
    pub peer: &'a PeerCredentials,
}

/// How a fetched value came: its payload's size on the wire, the wait until the sender
/// answered (mostly for the value to be produced) and the time the payload then took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fetch {
    pub wire_bytes: u64,
    pub wait: Duration,
    pub transfer: Duration,
    /// Over the bulk channel rather than the gRPC stream.
    pub bulk: bool,
}

/// Pulls the value published under `key` in `step` from the worker at `peer`, waiting up to
/// `timeout`; returns it and how it came.
pub fn fetch(
    peer: &str,
    key: &str,
    step: u64,
    precision: WirePrecision,
    timeout: Duration,
    limits: FetchLimits,
) -> Result<(Tensor, Fetch), String> {
    let asked = Instant::now();
    let budget = limits.budget;
    // Resolved once (the environment's token and authority are read here): the gRPC call and
    // the bulk channel use the same.
    let (token, ca) = limits.peer.resolve()?;
    // The bulk channel speaks TLS where gRPC does, checked against the same authority.
    let bulk_tls = match &ca {
        Some(ca) => Some(bulk::ClientTls {
            config: ca.rustls_client().map_err(|e| e.to_string())?,
            name: crate::service::tls::server_name(peer)?,
        }),
        None => None,
    };
    let mut c = client(peer, (token, ca))?;
    let request = proto::RecvTensorRequest {
        key: key.to_string(),
        step_id: step,
        timeout_ms: timeout.as_millis() as u64,
        precision: precision as i32,
        accept_bulk: bulk::enabled(),
    };
    let call = async move {
        let mut stream = c
            .recv_tensor(request)
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let header = match stream
            .message()
            .await
            .map_err(|s| s.message().to_string())?
        {
            Some(proto::RecvTensorChunk {
                part: Some(Part::Header(h)),
            }) => h,
            _ => return Err("the answer did not start with a header".to_string()),
        };
        let answered = Instant::now();
        let dtype = dtype_from_proto(header.dtype, "dtype").map_err(|e| e.to_string())?;
        let shape = (header.dims.iter())
            .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
            .collect::<Result<Vec<_>, _>>()?;
        let wire_precision =
            WirePrecision::try_from(header.precision).map_err(|_| "unknown precision")?;
        let mut decoder =
            precision::Decoder::new(dtype, &shape, wire_precision, header.scale, budget)?;
        if decoder.wire_bytes() as u64 != header.wire_bytes {
            return Err("the payload size does not match the header's shape".to_string());
        }
        if header.bulk_port != 0 {
            let ticket: [u8; 16] = (header.bulk_ticket[..].try_into())
                .map_err(|_| "a bulk ticket that is not 16 bytes".to_string())?;
            let port = u16::try_from(header.bulk_port).map_err(|_| "a bulk port past 65535")?;
            return Ok(Fetched::Bulk {
                port,
                ticket: u128::from_le_bytes(ticket),
                decoder,
                wire_bytes: header.wire_bytes,
                answered,
            });
        }
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| s.message().to_string())?
        {
            match chunk.part {
                Some(Part::Data(data)) => decoder.push(&data)?,
                _ => return Err("a second header in the payload".to_string()),
            }
        }
        Ok(Fetched::Whole(
            decoder.finish()?,
            header.wire_bytes,
            answered,
        ))
    };
    let (tx, rx) = std::sync::mpsc::channel();
    runtime()?.spawn(async move {
        let _ = tx.send(tokio::time::timeout(timeout, call).await);
    });
    let fetched = match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) | Err(_) => {
            return Err(format!(
                "no value from the worker at {peer} within {} ms",
                timeout.as_millis()
            ))
        }
    };
    let came = |wire_bytes, answered: Instant, bulk| Fetch {
        wire_bytes,
        wait: answered.duration_since(asked),
        transfer: answered.elapsed(),
        bulk,
    };
    match fetched {
        Fetched::Whole(value, wire_bytes, answered) => {
            Ok((value, came(wire_bytes, answered, false)))
        }
        Fetched::Bulk {
            port,
            ticket,
            decoder,
            wire_bytes,
            answered,
        } => {
            let addrs = bulk_addrs(peer, port)?;
            let tls = bulk_tls.as_ref();
            let value = bulk::redeem(&addrs, ticket, decoder, timeout, tls)?;
            Ok((value, came(wire_bytes, answered, true)))
        }
    }
}

/// What RecvTensor answered (and when its header came): the value, or where to fetch its
/// payload.
enum Fetched {
    Whole(Tensor, u64, Instant),
    Bulk {
        port: u16,
        ticket: u128,
        decoder: precision::Decoder,
        wire_bytes: u64,
        answered: Instant,
    },
}

/// The bulk port `port` at each address the host of the gRPC address `peer` resolves to.
fn bulk_addrs(peer: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let host = match peer.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => peer,
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("the bulk address of {peer}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{peer} resolves to no address"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cleaned_up_keys_are_forgotten_and_others_kept() {
        let key = |tensor: &str| format!("a;{:x};b;1;{tensor}", incarnation());
        let (gone, kept) = (key("gone"), key("kept"));
        publish(&gone, 3, Tensor::scalar(1.0f32));
        publish(&kept, 3, Tensor::scalar(2.0f32));
        forget_keys(std::slice::from_ref(&gone));
        let short = Duration::from_millis(50);
        let err = take(&gone, 3, short).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(take(&kept, 3, short).await.unwrap(), Tensor::scalar(2.0f32));
    }

    #[tokio::test]
    async fn a_range_of_aborted_steps_ends_their_waits_and_no_others() {
        let key = format!("a;{:x};b;range-graph;t", incarnation());
        abort("range-graph", 10, 3, "a repeated step failed");
        let short = Duration::from_millis(50);
        for step in 10..13 {
            let err = take(&key, step, Duration::from_secs(5)).await.unwrap_err();
            assert!(err.message().contains("a repeated step failed"), "{err:?}");
        }
        // Outside the range, and a published value there, stay as they were.
        publish(&key, 13, Tensor::scalar(4.0f32));
        assert_eq!(take(&key, 13, short).await.unwrap(), Tensor::scalar(4.0f32));
        let err = take(&key, 9, short).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        // A count of 0 aborts the one step; a count past the end of u64 stops there.
        abort("range-graph", 20, 0, "one");
        abort("range-graph", u64::MAX - 1, u64::MAX, "to the end");
        assert!(take(&key, 20, short).await.is_err());
        assert_eq!(
            take(&key, 21, short).await.unwrap_err().code(),
            tonic::Code::DeadlineExceeded
        );
        assert!(take(&key, u64::MAX, short)
            .await
            .unwrap_err()
            .message()
            .contains("to the end"));
    }
}
