//! The bulk channel: large tensors between workers travel over plain TCP beside gRPC.
//! HTTP/2 framing, protobuf and the chunk copies cost most of loopback's bandwidth
//! (tensorflow#4498 measured TensorFlow's gRPC transport at about 2% of it), so RecvTensor
//! answers a large tensor with its header and a ticket instead of data pieces; the receiver
//! hands the ticket to the sender's bulk port and reads the payload straight into the
//! tensor's memory.
//!
//! Wire: the receiver writes the 16-byte ticket; the sender answers the payload's length
//! (u64, little-endian; `u64::MAX` for an unknown or expired ticket) and the payload. A
//! connection carries any number of tickets, one after another, and is pooled per peer.
//! Tickets are random and handed out only through (authenticated) RecvTensor calls. Engines
//! that speak TLS speak it here too ([`conn`]): a port of its own, with their certificate.

mod conn;

pub use conn::ClientTls;
use conn::Conn;

use super::precision::{Decoder, Encoder};
use crate::service::proto::WirePrecision;
use crate::tensor::{Buffer, Tensor};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Payloads at least this large go over the bulk channel; smaller ones stream over gRPC,
/// where they save the bulk channel's extra round trip.
pub const BULK_MIN_BYTES: usize = 256 << 10;

/// Tickets nobody redeemed (the receiver gave up) are dropped after this long.
const STALE: Duration = Duration::from_secs(600);

/// A connection that brings no ticket for this long is closed (receivers reconnect).
const IDLE: Duration = Duration::from_secs(120);

/// The most connections served at once (a thread each): past it a new connection waits in
/// the listen queue until one closes, so connections cannot pile up threads. Receivers pool
/// one connection per peer and concurrent transfer.
const MAX_CONNECTIONS: usize = 64;

/// Set to `off` (or `0`), receivers ask for every payload over gRPC: for networks where only
/// the gRPC port is open.
pub const BULK_ENV: &str = "SLUICE_BULK";

/// Whether this process's receivers use the bulk channel.
pub fn enabled() -> bool {
    !matches!(
        std::env::var(BULK_ENV).as_deref().map(str::trim),
        Ok("off" | "0" | "false" | "no")
    )
}

/// What the sender writes per `write` call when it must encode (not f32 as is).
pub const PIECE_BYTES: usize = 4 << 20;

const UNKNOWN_TICKET: u64 = u64::MAX;

struct Waiting {
    /// The payload, ready to encode (the header it was described by was made from it).
    encoder: Encoder,
    /// The rendezvous key it was published under, so cleaning up a graph drops it.
    key: String,
    at: Instant,
}

fn tickets() -> MutexGuard<'static, HashMap<u128, Waiting>> {
    static TICKETS: OnceLock<Mutex<HashMap<u128, Waiting>>> = OnceLock::new();
    TICKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A ticket nobody can guess.
fn new_ticket() -> u128 {
    crate::service::auth::random_u128()
}

/// The port this process serves bulk payloads on, bound on `ip` at first use: in plain TCP
/// without `tls`; with it, in TLS with that configuration (one port per configuration, so
/// engines of one process with certificates of their own each serve theirs).
pub fn port(ip: IpAddr, tls: Option<&Arc<rustls::ServerConfig>>) -> Result<u16, String> {
    type TlsPorts = Vec<(Arc<rustls::ServerConfig>, Result<u16, String>)>;
    static PLAIN: OnceLock<Result<u16, String>> = OnceLock::new();
    static TLS: OnceLock<Mutex<TlsPorts>> = OnceLock::new();
    let Some(config) = tls else {
        return PLAIN.get_or_init(|| start(ip, None)).clone();
    };
    let mut ports = TLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, port)) = ports.iter().find(|(c, _)| Arc::ptr_eq(c, config)) {
        return port.clone();
    }
    let port = start(ip, Some(config.clone()));
    ports.push((config.clone(), port.clone()));
    port
}

fn start(ip: IpAddr, tls: Option<Arc<rustls::ServerConfig>>) -> Result<u16, String> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| format!("cannot open the bulk port on {ip}: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("the bulk port: {e}"))?
        .port();
    std::thread::Builder::new()
        .name("sluice-bulk".into())
        .spawn(move || loop {
            let places = Places::get();
            // Wait for a free place before taking the next connection: it waits in the
            // listen queue meanwhile, and the senders' threads stay bounded.
            places.wait_for_one();
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: do not spin.
                    tracing::warn!("bulk channel: cannot accept a connection: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let place = places.take();
            let tls = tls.clone();
            let spawned = std::thread::Builder::new()
                .name("sluice-bulk-send".into())
                .spawn(move || {
                    serve(stream, tls.as_ref());
                    drop(place);
                });
            if let Err(e) = spawned {
                // The connection is dropped unserved (and its place given back).
                tracing::warn!("bulk channel: cannot start a sender: {e}");
            }
        })
        .map_err(|e| format!("cannot start the bulk channel: {e}"))?;
    Ok(port)
}

/// The connections being served, at most [`MAX_CONNECTIONS`].
struct Places {
    taken: Mutex<usize>,
    freed: Condvar,
}

/// A connection's place, given back when it is dropped.
struct Place(&'static Places);

impl Drop for Place {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

impl Places {
    fn get() -> &'static Places {
        static PLACES: Places = Places {
            taken: Mutex::new(0),
            freed: Condvar::new(),
        };
        &PLACES
    }

    fn wait_for_one(&'static self) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        while *taken >= MAX_CONNECTIONS {
            taken = self.freed.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn take(&'static self) -> Place {
        *self.taken.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Place(self)
    }
}

/// Keeps the payload `encoder` makes (of a value published under the rendezvous `key`) for
/// the receiver that brings the returned ticket.
pub fn offer(encoder: Encoder, key: &str) -> u128 {
    let ticket = new_ticket();
    let now = Instant::now();
    let mut waiting = tickets();
    waiting.retain(|_, w| now.duration_since(w.at) < STALE);
    waiting.insert(
        ticket,
        Waiting {
            encoder,
            key: key.to_string(),
            at: now,
        },
    );
    ticket
}

/// Drops the payloads still waiting for tickets of these rendezvous keys (their graph was
/// cleaned up), and any past their time.
pub fn forget_keys(keys: &std::collections::HashSet<&str>) {
    let now = Instant::now();
    tickets().retain(|_, w| !keys.contains(w.key.as_str()) && now.duration_since(w.at) < STALE);
}

/// Answers one connection's tickets until the receiver hangs up.
fn serve(stream: TcpStream, tls: Option<&Arc<rustls::ServerConfig>>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let Ok(mut stream) = Conn::accepted(stream, tls) else {
        return;
    };
    let mut ticket = [0u8; 16];
    while stream.read_exact(&mut ticket).is_ok() {
        let waiting = tickets().remove(&u128::from_le_bytes(ticket));
        let sent = match waiting {
            Some(w) => send(&mut stream, w.encoder),
            None => stream.write_all(&UNKNOWN_TICKET.to_le_bytes()),
        };
        if sent.and_then(|()| stream.flush()).is_err() {
            return;
        }
    }
}

fn send(stream: &mut impl Write, encoder: Encoder) -> std::io::Result<()> {
    stream.write_all(&(encoder.wire_bytes() as u64).to_le_bytes())?;
    if let Some(bytes) = as_wire_bytes(encoder.tensor(), encoder.precision) {
        return stream.write_all(bytes);
    }
    for piece in encoder {
        stream.write_all(&piece)?;
    }
    Ok(())
}

/// The tensor's memory when it is already its wire form (f32 as is, little-endian host).
fn as_wire_bytes(value: &Tensor, precision: WirePrecision) -> Option<&[u8]> {
    if precision != WirePrecision::WireF32 || cfg!(target_endian = "big") {
        return None;
    }
    match value.buffer() {
        Buffer::F32(v) => Some(bytemuck::cast_slice(v)),
        Buffer::F64(v) => Some(bytemuck::cast_slice(v)),
        Buffer::I32(v) => Some(bytemuck::cast_slice(v)),
        Buffer::I64(v) => Some(bytemuck::cast_slice(v)),
        Buffer::U8(v) => Some(v),
        Buffer::Bool(_) => None,
    }
}

/// Idle connections by sender and, for TLS ones, the trust and name they were opened with.
type Pool = HashMap<(SocketAddr, Option<(usize, String)>), Vec<Conn>>;

fn pool() -> MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Redeems `ticket` at the bulk port (the first of `addrs` that answers; over TLS with
/// `tls`) and decodes the payload `decoder` expects, waiting at most `timeout` for any read
/// or write.
pub fn redeem(
    addrs: &[SocketAddr],
    ticket: u128,
    decoder: Decoder,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Tensor, String> {
    let trust = tls.map(ClientTls::pool_key);
    let pooled = {
        let mut pool = pool();
        (addrs.iter()).find_map(|a| {
            let key = (*a, trust.clone());
            pool.get_mut(&key).and_then(Vec::pop).map(|s| (*a, s))
        })
    };
    let (peer, mut stream, reused) = match pooled {
        Some((peer, stream)) => (peer, stream, true),
        None => {
            let (peer, stream) = Conn::connect(addrs, timeout, tls)?;
            (peer, stream, false)
        }
    };
    let io = |e: std::io::Error| format!("bulk transfer from {peer}: {e}");
    let mut len = ask(&mut stream, ticket, timeout);
    if reused && len.is_err() {
        // The sender closed the pooled connection while it sat idle, before reading the
        // ticket (which it therefore still holds): ask again on a new one.
        let (_, fresh) = Conn::connect(&[peer], timeout, tls)?;
        stream = fresh;
        len = ask(&mut stream, ticket, timeout);
    }
    let len = len.map_err(io)?;
    if len == UNKNOWN_TICKET {
        pool()
            .entry((peer, trust.clone()))
            .or_default()
            .push(stream);
        return Err(format!(
            "the worker at {peer} no longer holds the tensor (its ticket expired)"
        ));
    }
    if len != decoder.wire_bytes() as u64 {
        return Err(format!(
            "the bulk payload from {peer} is {len} bytes; its header said {}",
            decoder.wire_bytes()
        ));
    }
    let value = decoder.read_from(&mut stream).map_err(io)?;
    pool()
        .entry((peer, trust.clone()))
        .or_default()
        .push(stream);
    Ok(value)
}

/// Sends the ticket; returns the payload length the sender answers.
fn ask(stream: &mut Conn, ticket: u128, timeout: Duration) -> std::io::Result<u64> {
    stream.tcp().set_read_timeout(Some(timeout))?;
    stream.tcp().set_write_timeout(Some(timeout))?;
    stream.write_all(&ticket.to_le_bytes())?;
    stream.flush()?;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    Ok(u64::from_le_bytes(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tls::{ServerIdentity, TrustedCa};
    use crate::tensor::DType;

    fn round_trip(value: &Tensor, precision: WirePrecision) -> Tensor {
        let port = port(IpAddr::from([127, 0, 0, 1]), None).unwrap();
        let encoder = Encoder::new(value, precision, PIECE_BYTES);
        let decoder = Decoder::new(
            value.dtype(),
            value.shape(),
            encoder.precision,
            encoder.scale,
            crate::tensor::MemoryBudget::unlimited(),
        )
        .unwrap();
        let ticket = offer(encoder, "a;1;b;2;t");
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        redeem(&[peer], ticket, decoder, Duration::from_secs(5), None).unwrap()
    }

    #[test]
    fn payloads_arrive_whole_in_each_precision() {
        let values: Vec<f32> = (0..300_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let t = Tensor::new(&[300, 1000], values).unwrap();
        assert_eq!(round_trip(&t, WirePrecision::WireF32), t);
        let back = round_trip(&t, WirePrecision::WireBf16);
        assert!(back.max_abs_diff(&t).unwrap() < 1.0 / 128.0);
        let ints = Tensor::from_vec((0..100_000i64).collect());
        assert_eq!(round_trip(&ints, WirePrecision::WireF32), ints);
        let flags = Tensor::new(&[3], vec![true, false, true]).unwrap();
        assert_eq!(round_trip(&flags, WirePrecision::WireF32), flags);
    }

    /// A server identity and the authority that signed it, for 127.0.0.1.
    fn certificates() -> (ServerIdentity, TrustedCa) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sluice-bulk-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let identity = ServerIdentity::read(
            &write("cert.pem", cert.pem()),
            &write("key.pem", key.serialize_pem()),
        )
        .unwrap();
        (
            identity,
            TrustedCa::read(&write("ca.pem", ca.pem())).unwrap(),
        )
    }

    /// A ticket for `t` and the decoder that receives it.
    fn offer_of(t: &Tensor) -> (u128, Decoder) {
        let budget = crate::tensor::MemoryBudget::unlimited();
        let encoder = Encoder::new(t, WirePrecision::WireF32, PIECE_BYTES);
        let decoder = Decoder::new(t.dtype(), t.shape(), encoder.precision, 1.0, budget).unwrap();
        (offer(encoder, "a;1;b;2;t"), decoder)
    }

    fn client_tls(ca: &TrustedCa) -> ClientTls {
        ClientTls {
            config: ca.rustls_client().unwrap(),
            name: crate::service::tls::server_name("127.0.0.1:1").unwrap(),
        }
    }

    fn hundred_thousand() -> Tensor {
        let values: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        Tensor::new(&[100, 1000], values).unwrap()
    }

    #[test]
    fn payloads_cross_in_tls_to_receivers_that_trust_the_sender_only() {
        let (identity, ca) = certificates();
        let server = identity.rustls_server(None).unwrap();
        let port = port(IpAddr::from([127, 0, 0, 1]), Some(&server)).unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let t = hundred_thousand();
        let tls = client_tls(&ca);
        let (ticket, decoder) = offer_of(&t);
        let got = redeem(&[peer], ticket, decoder, Duration::from_secs(5), Some(&tls)).unwrap();
        assert_eq!(got, t);
        // Plain text to the TLS port, or TLS that trusts another authority: no payload.
        let (ticket, decoder) = offer_of(&t);
        assert!(redeem(&[peer], ticket, decoder, Duration::from_secs(2), None).is_err());
        let (_, stranger) = certificates();
        let wrong = ClientTls {
            config: stranger.rustls_client().unwrap(),
            ..tls
        };
        let (ticket, decoder) = offer_of(&t);
        let err = redeem(
            &[peer],
            ticket,
            decoder,
            Duration::from_secs(2),
            Some(&wrong),
        );
        assert!(err.is_err());
    }

    #[test]
    fn with_mutual_tls_only_receivers_with_a_certificate_of_the_authority_get_payloads() {
        let (identity, ca) = certificates();
        let server = identity.rustls_server(Some(&ca)).unwrap();
        let port = port(IpAddr::from([127, 0, 0, 1]), Some(&server)).unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let t = hundred_thousand();
        let wait = Duration::from_secs(2);
        // No certificate, or one another authority signed: refused.
        let (ticket, decoder) = offer_of(&t);
        let err = redeem(&[peer], ticket, decoder, wait, Some(&client_tls(&ca))).unwrap_err();
        assert!(err.contains("CertificateRequired"), "{err}");
        let (stranger, _) = certificates();
        let forged = client_tls(&ca.clone().presenting(stranger.as_client()));
        let (ticket, decoder) = offer_of(&t);
        let err = redeem(&[peer], ticket, decoder, wait, Some(&forged)).unwrap_err();
        assert!(err.contains("alert"), "{err}");
        // An engine's own certificate, which the authority signed: the payload.
        let signed = client_tls(&ca.presenting(identity.as_client()));
        let (ticket, decoder) = offer_of(&t);
        assert_eq!(
            redeem(&[peer], ticket, decoder, wait, Some(&signed)).unwrap(),
            t
        );
    }

    #[test]
    fn an_unknown_ticket_is_refused_and_the_connection_stays_usable() {
        let port = port(IpAddr::from([127, 0, 0, 1]), None).unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let budget = crate::tensor::MemoryBudget::unlimited();
        let decoder = Decoder::new(DType::F32, &[4], WirePrecision::WireF32, 1.0, budget).unwrap();
        let err = redeem(&[peer], 12345, decoder, Duration::from_secs(5), None).unwrap_err();
        assert!(err.contains("no longer holds"), "{err}");
        let t = Tensor::from_vec(vec![1.0f32, 2.0]);
        assert_eq!(round_trip(&t, WirePrecision::WireF32), t);
    }
}
