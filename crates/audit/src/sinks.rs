//! Where signed checkpoints go besides the primary file (检查点副本): a mirror file (on a disk or
//! mount the database's writer cannot edit, e.g. `/var/log/tongban/checkpoints.log`) and a
//! syslog collector (RFC 5424 over UDP, RFC 5426, or TCP with octet counting, RFC 6587).
//!
//! Someone who deletes the newest audit records and the matching lines of the primary checkpoint
//! file is caught by any other sink that still holds the checkpoint: `verify` reads every file
//! sink, and the collector keeps what it received.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::checkpoint::Checkpoint;

/// How long one syslog delivery may take.
const SYSLOG_TIMEOUT: Duration = Duration::from_secs(3);
/// RFC 5424 PRI: facility 13 (log audit) × 8 + severity 5 (notice).
const SYSLOG_PRI: u8 = 13 * 8 + 5;

/// How a syslog collector is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426).
    Udp,
    /// A stream, each message framed as `LEN SP MSG` (RFC 6587 §3.4.1).
    Tcp,
}

/// A syslog collector, from `udp://host:port` or `tcp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    /// The transport.
    pub transport: SyslogTransport,
    /// `host:port`.
    pub address: String,
}

impl SyslogTarget {
    /// Parses `udp://host:port` or `tcp://host:port`; `None` for anything else.
    pub fn parse(url: &str) -> Option<SyslogTarget> {
        let url = url.trim();
        let (transport, rest) = if let Some(r) = url.strip_prefix("udp://") {
            (SyslogTransport::Udp, r)
        } else if let Some(r) = url.strip_prefix("tcp://") {
            (SyslogTransport::Tcp, r)
        } else {
            return None;
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':')?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
            return None;
        }
        Some(SyslogTarget { transport, address: rest.to_string() })
    }

    /// The URL it was configured as.
    pub fn url(&self) -> String {
        let scheme = match self.transport {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        };
        format!("{scheme}://{}", self.address)
    }

    /// Delivers one message.
    pub async fn send(&self, message: &str) -> std::io::Result<()> {
        let deliver = async {
            match self.transport {
                SyslogTransport::Udp => {
                    let local = if self.address.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
                    let socket = tokio::net::UdpSocket::bind(local).await?;
                    socket.connect(&self.address).await?;
                    socket.send(message.as_bytes()).await?;
                }
                SyslogTransport::Tcp => {
                    let mut stream = tokio::net::TcpStream::connect(&self.address).await?;
                    stream.write_all(format!("{} {message}", message.len()).as_bytes()).await?;
                    stream.flush().await?;
                    stream.shutdown().await?;
                }
            }
            Ok(())
        };
        tokio::time::timeout(SYSLOG_TIMEOUT, deliver)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the syslog collector did not answer in time")))
    }
}

/// The checkpoint as one RFC 5424 message:
/// `<109>1 TIMESTAMP HOSTNAME tongban PROCID checkpoint - MSG`, where MSG is the checkpoint's
/// line exactly as in the files (so a collector's copy can be compared line for line).
pub fn syslog_message(cp: &Checkpoint, hostname: &str, procid: u32) -> String {
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(cp.at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "-".into());
    format!("<{SYSLOG_PRI}>1 {timestamp} {} tongban {procid} checkpoint - {}", header_field(hostname, 255), cp.to_line().trim_end())
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` long, `-` if empty.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// This machine's name, for the syslog HOSTNAME field.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| header_field(s.trim(), 255))
        .unwrap_or_else(|_| "-".into())
}

/// The sinks besides the primary file.
#[derive(Debug, Clone, Default)]
pub struct CheckpointSinks {
    /// A second checkpoint file.
    pub mirror: Option<PathBuf>,
    /// A syslog collector.
    pub syslog: Option<SyslogTarget>,
}

/// What kind of place a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SinkKind {
    /// The checkpoint file in the data directory (or `audit.checkpoint_file`).
    Primary,
    /// The mirror file (`audit.checkpoint_mirror`).
    Mirror,
    /// The syslog collector (`audit.syslog`).
    Syslog,
}

impl SinkKind {
    /// A stable name (`primary`, `mirror`, `syslog`).
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Primary => "primary",
            SinkKind::Mirror => "mirror",
            SinkKind::Syslog => "syslog",
        }
    }
}

/// The outcome of writing one checkpoint to one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkWrite {
    /// Which sink.
    pub kind: SinkKind,
    /// Its path or URL.
    pub target: String,
    /// The checkpoint's sequence number.
    pub seq: i64,
    /// Empty when it was written; otherwise why not.
    pub error: String,
}

/// What this process last wrote to each sink (the collector cannot be read back).
pub(crate) type LastWrites = Arc<Mutex<Vec<SinkWrite>>>;

/// One sink as the auditor's page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SinkState {
    /// Which sink.
    pub kind: SinkKind,
    /// Its path or URL.
    pub target: String,
    /// Whether it holds the latest checkpoint: read back for files; for the collector, what the
    /// last delivery by this process answered (`None`: nothing sent since this process started).
    pub holds_latest: Option<bool>,
    /// The last write's error, if it failed.
    pub last_error: String,
}

/// The latest checkpoint found in any file sink, and where it went.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointStatus {
    /// The checkpoint with the highest sequence number in any file.
    pub latest: Option<Checkpoint>,
    /// Every configured sink.
    pub sinks: Vec<SinkState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_only_as_udp_or_tcp_with_a_port() {
        let t = SyslogTarget::parse("udp://127.0.0.1:514").expect("udp");
        assert_eq!((t.transport, t.address.as_str()), (SyslogTransport::Udp, "127.0.0.1:514"));
        assert_eq!(SyslogTarget::parse("tcp://log.jiahe.internal:6514").map(|t| t.transport), Some(SyslogTransport::Tcp));
        assert_eq!(SyslogTarget::parse("tcp://[::1]:514").map(|t| t.url()), Some("tcp://[::1]:514".into()));
        for bad in ["", "udp://", "udp://host", "udp://:514", "http://h:1", "udp://h:0", "udp://h:99999"] {
            assert_eq!(SyslogTarget::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_message_follows_rfc_5424() {
        let cp = Checkpoint { seq: 42, hash: "ab".into(), at: 1_765_000_000_123, signature: "cd".into() };
        let m = syslog_message(&cp, "tb host", 77);
        assert_eq!(
            m,
            "<109>1 2025-12-06T05:46:40.123Z tbhost tongban 77 checkpoint - tongban-audit-checkpoint v1 seq=42 hash=ab at=1765000000123 sig=cd"
        );
        assert_eq!(header_field("", 10), "-");
    }
}
