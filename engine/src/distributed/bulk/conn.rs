//! The bulk channel's connections: plain TCP, or TLS over it when the engines speak TLS
//! (rustls, the same as their gRPC channels), behind one `Read + Write` type.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// What a receiver needs to open TLS to a sender's bulk port: whom it trusts, and the name
/// the sender's certificate must hold (the host of its gRPC address).
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl ClientTls {
    /// What a pooled connection must have been opened with to be reused for this: the same
    /// trust (one configuration per authority, see `TrustedCa::rustls_client`) and name.
    pub(super) fn pool_key(&self) -> (usize, String) {
        (
            Arc::as_ptr(&self.config) as usize,
            format!("{:?}", self.name),
        )
    }
}

/// One connection to or from a bulk port.
pub(super) enum Conn {
    Plain(TcpStream),
    ClientTls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    ServerTls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    /// A connection a sender accepted, wrapped in TLS when `tls` is given.
    pub(super) fn accepted(
        stream: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Conn> {
        match tls {
            None => Ok(Conn::Plain(stream)),
            Some(config) => {
                let server =
                    rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
                Ok(Conn::ServerTls(Box::new(rustls::StreamOwned::new(
                    server, stream,
                ))))
            }
        }
    }

    /// A connection to the first of `addrs` that accepts one, in TLS when `tls` is given
    /// (the handshake happens with the first bytes, under the stream's timeouts).
    pub(super) fn connect(
        addrs: &[SocketAddr],
        timeout: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<(SocketAddr, Conn), String> {
        let mut failures = Vec::new();
        for &addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let conn = match tls {
                        None => Conn::Plain(s),
                        Some(tls) => {
                            let client =
                                rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                                    .map_err(|e| format!("TLS to the bulk port {addr}: {e}"))?;
                            Conn::ClientTls(Box::new(rustls::StreamOwned::new(client, s)))
                        }
                    };
                    return Ok((addr, conn));
                }
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        Err(format!(
            "cannot reach the bulk port ({}); set {}=off to move tensors over gRPC only",
            failures.join("; "),
            super::BULK_ENV
        ))
    }

    /// The TCP stream underneath, for its timeouts.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::ClientTls(s) => &s.sock,
            Conn::ServerTls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::ClientTls(s) => s.read(buf),
            Conn::ServerTls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::ClientTls(s) => s.write(buf),
            Conn::ServerTls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::ClientTls(s) => s.flush(),
            Conn::ServerTls(s) => s.flush(),
        }
    }
}
