//! The TOML configuration (SPEC.md "Configuration"): parsing, defaults and validation.
//!
//! Keys that SPEC.md names keep its spelling; `[queue]` and `[limits]` are congvan's own
//! additions, each with a default so a minimal file stays minimal.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/congvan/congvan.toml";
/// 35 MiB: a 20 MB PDF in base64 plus headers.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 36_700_160;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EHLO name and the authserv-id of Authentication-Results.
    pub hostname: String,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database_url: Option<String>,
    pub policy_dir: PathBuf,
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    pub outbound: DeliveryConfig,
    pub inbound: InboundConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub register: RegisterConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[metrics]`: where `/metrics` (Prometheus text) and `/health` are served; none without
/// `bind`. Keep it on a loopback or management address: it needs no password.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub bind: Option<SocketAddr>,
}

/// `[log]`: how the daemon writes its log (to standard error, for the journal or a file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// Plain text (colours only on a terminal) or one JSON object per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_max_message_size() -> u64 {
    DEFAULT_MAX_MESSAGE_SIZE
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Clerks: STARTTLS, then AUTH, before MAIL.
    Submission,
    /// Clerks over implicit TLS (RFC 8314).
    Submissions,
    /// The office mail server: no AUTH, only from `trusted_networks`.
    Relay,
    /// Mail from other offices, only for `inbound.local_domains`.
    Inbound,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submission => "submission",
            Role::Submissions => "submissions",
            Role::Relay => "relay",
            Role::Inbound => "inbound",
        }
    }
    /// Roles where a clerk authenticates before MAIL.
    pub fn requires_auth(self) -> bool {
        matches!(self, Role::Submission | Role::Submissions)
    }
    /// Session slots of a listener of this role when neither `[[listener]] max_connections`
    /// nor `[limits] max_connections` is set: the public inbound port gets the most, the
    /// office mail server (which keeps a few connections open) the fewest.
    pub fn default_max_connections(self) -> usize {
        match self {
            Role::Submission | Role::Submissions => 200,
            Role::Relay => 100,
            Role::Inbound => 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub role: Role,
    pub bind: SocketAddr,
    #[serde(default)]
    pub trusted_networks: Vec<IpNet>,
    /// Sessions this listener holds at once; each listener counts its own, so a flood on
    /// one (the public inbound port) never takes the slots of another (the relay, the
    /// clerks). Default: `[limits] max_connections` when set, else the role's default
    /// ([`Role::default_max_connections`]).
    #[serde(default)]
    pub max_connections: Option<usize>,
}

impl ListenerConfig {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.trusted_networks.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) compare as the IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS must succeed and the certificate must verify.
    #[default]
    Required,
    /// STARTTLS when offered, without certificate verification (like Postfix's `may`).
    Opportunistic,
    /// Plain SMTP, for a smarthost on a trusted LAN.
    None,
}

/// Where a message goes: an SMTP server or a directory of `.eml` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `smtp://host:port` (STARTTLS per the tls mode) or `smtps://host:port` (implicit TLS).
    Smtp {
        host: String,
        port: u16,
        implicit_tls: bool,
    },
    /// `outbox:/path`: each delivery as NAME.eml plus NAME.envelope.json.
    Outbox(PathBuf),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        if let Some(path) = s.strip_prefix("outbox:") {
            if path.is_empty() {
                return Err(
                    "outbox: needs a directory, e.g. outbox:/var/spool/congvan/outbox".into(),
                );
            }
            return Ok(Target::Outbox(PathBuf::from(path)));
        }
        let (implicit_tls, rest, default_port) = if let Some(r) = s.strip_prefix("smtps://") {
            (true, r, 465)
        } else if let Some(r) = s.strip_prefix("smtp://") {
            (false, r, 25)
        } else {
            return Err(format!(
                "'{s}' is not a target: use smtp://host:port, smtps://host:port or outbox:/path"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
            let (h, p) = stripped
                .split_once(']')
                .ok_or_else(|| format!("'{s}': unclosed '[' in IPv6 host"))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("'{s}': bad port"))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("'{s}': bad port '{p}'"))?,
                ),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("'{s}': no host"));
        }
        Ok(Target::Smtp {
            host,
            port,
            implicit_tls,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Smtp {
                host,
                port,
                implicit_tls,
            } => write!(
                f,
                "{}://{}:{}",
                if *implicit_tls { "smtps" } else { "smtp" },
                host,
                port
            ),
            Target::Outbox(p) => write!(f, "outbox:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Target::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `[outbound]`: where allowed outgoing mail is relayed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub upstream: Target,
    #[serde(default)]
    pub tls: TlsMode,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// First line the user name, second line the password.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// `[inbound]`: the domains this gateway receives for, and where their mail goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    #[serde(default)]
    pub local_domains: Vec<String>,
    pub deliver_to: Target,
    #[serde(default = "opportunistic")]
    pub tls: TlsMode,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

fn opportunistic() -> TlsMode {
    TlsMode::Opportunistic
}

impl InboundConfig {
    /// The `[inbound]` delivery settings in the shape `[outbound]` has.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            upstream: self.deliver_to.clone(),
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            credentials_file: self.credentials_file.clone(),
        }
    }
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.local_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// `[queue]`: retry schedule and lifetime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// First retry after this many seconds; doubles each attempt, with jitter.
    pub retry_base_secs: u64,
    /// Longest wait between two attempts.
    pub retry_max_secs: u64,
    /// A message still undelivered after this long is returned to its sender.
    pub max_lifetime_hours: u64,
    /// Deliveries in flight at once. Default 32: a delivery slot waits on the next hop and on
    /// its result's commit more than it works; with 16 a slot turned over only every 30 ms
    /// and the end-to-end rate was a fifth lower (bench/README.md, vs-postfix). Postfix's own
    /// limit per destination is 20, and a receiving Postfix allows 50 connections per client
    /// by default. On top of these, `concurrency / 8` slots (1 to 4) are kept for urgent
    /// documents (`queue::scheduler`).
    pub concurrency: usize,
    /// How often the deadline monitor looks at undelivered documents.
    pub monitor_interval_secs: u64,
    /// A message still deferred this long after acceptance gets one "delayed" DSN to its
    /// sender (RFC 3461: unless NOTIFY excludes DELAY); 0 sends none. Fractions allowed.
    pub delay_notice_hours: f64,
    /// How long a delivery attempt holds its message (renewed every third of it while the
    /// attempt runs). A `delivering` message whose lease has passed was left by a daemon
    /// that stopped: it is taken back, and `queue hold`/`delete` may act on it.
    pub lease_secs: u64,
    /// This daemon's name in `claimed_by`; default the `hostname` key. Daemons sharing one
    /// database need different names.
    pub node_id: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_base_secs: 60,
            retry_max_secs: 3600,
            max_lifetime_hours: 120,
            concurrency: 32,
            monitor_interval_secs: 30,
            delay_notice_hours: 4.0,
            lease_secs: 120,
            node_id: None,
        }
    }
}

/// `[register]`: what the registers keep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Days a copy of each outgoing document, as sent (sealed), is kept under
    /// `data_dir/archive/`; 0 keeps no copies. The register rows themselves are kept.
    pub archive_days: u32,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        // Five years unless the office sets its own term.
        RegisterConfig { archive_days: 1825 }
    }
}

/// `[limits]`: protocol limits of every listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_line_length: usize,
    /// Refusals before the connection is closed.
    pub max_errors: u32,
    /// Commands other than MAIL/RCPT/DATA allowed between two messages (NOOP, RSET, EHLO...).
    pub max_commands_before_mail: u32,
    /// Time allowed for each whole command line (and each AUTH response), from the moment
    /// the gateway waits for it: a client trickling a byte every few seconds is cut off all
    /// the same (`421 4.4.2`), as with Postfix's `smtpd_timeout` and
    /// `smtpd_per_record_deadline`. Also the time allowed to write a reply.
    pub command_timeout_secs: Option<u64>,
    /// The name `command_timeout_secs` had before it was a deadline for the whole line;
    /// still read, used when `command_timeout_secs` is not set.
    pub idle_timeout_secs: Option<u64>,
    /// Time allowed for the whole DATA phase, from the 354 to the final dot (`421 4.4.2`).
    pub data_timeout_secs: u64,
    /// Slowest average rate, in bytes per second, at which message data may arrive
    /// (Postfix's `smtpd_min_data_rate`): DATA starts with `command_timeout_secs` of credit,
    /// each read spends the time it waited and earns `bytes / min_data_rate` seconds, the
    /// credit never going above `command_timeout_secs`; at zero the session gets
    /// `421 4.4.2`. 0 turns the rate check off (DATA is then bounded by
    /// `data_timeout_secs` alone).
    pub min_data_rate: u64,
    /// Failed AUTH attempts per client address before it is refused for `auth_block_secs`.
    pub max_auth_failures: u32,
    pub auth_block_secs: u64,
    /// The session slots of each listener that does not set its own `max_connections`
    /// (counted per listener, never shared); unset, each role has its own default.
    pub max_connections: Option<usize>,
    /// Sessions one client address may hold at once on one listener (relay listeners'
    /// trusted networks are exempt: the office mail server opens many).
    pub max_connections_per_ip: usize,
    /// Time allowed for a TLS handshake (implicit TLS and STARTTLS).
    pub tls_handshake_secs: u64,
    /// Memory all sessions together may hold for messages being received (MiB). A message
    /// that would go over it is read to its end, discarded and refused with 452 4.3.1, so a
    /// burst of large messages cannot exhaust the machine; 0 means no limit.
    pub max_data_memory_mb: usize,
    /// Deepest MIME nesting (multipart, `message/rfc822`, `message/global`) a message may
    /// have; deeper ones are refused at end of DATA with 554 5.6.0 and held before sealing
    /// (SPEC "Robustness"). At most [`crate::nesting::MAX_DEPTH_CEILING`].
    pub max_mime_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 100,
            max_line_length: 2048,
            max_errors: 10,
            max_commands_before_mail: 50,
            command_timeout_secs: None,
            idle_timeout_secs: None,
            data_timeout_secs: 600,
            min_data_rate: 500,
            max_auth_failures: 5,
            auth_block_secs: 600,
            max_connections: None,
            max_connections_per_ip: 50,
            tls_handshake_secs: 30,
            max_data_memory_mb: 1024,
            max_mime_depth: crate::nesting::DEFAULT_MAX_DEPTH,
        }
    }
}

/// `[limits] command_timeout_secs` when neither it nor its old name is set.
pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 300;

impl Limits {
    /// The deadline for one whole command line (see `command_timeout_secs`).
    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(
            self.command_timeout_secs
                .or(self.idle_timeout_secs)
                .unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECS),
        )
    }
    /// The deadline for the whole DATA phase.
    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if self.hostname.trim().is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(invalid("hostname", "must be a host name".into()));
        }
        if self.max_message_size < 1024 {
            return Err(invalid("max_message_size", "must be at least 1024".into()));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.role.requires_auth() && self.tls.is_none() {
                return Err(invalid(
                    &format!("listener[{i}]"),
                    format!("role {} needs a [tls] certificate", l.role.as_str()),
                ));
            }
            if self.listener_max_connections(l) == 0 {
                return Err(invalid(
                    &format!("listener[{i}].max_connections"),
                    "must be at least 1".into(),
                ));
            }
            if l.role == Role::Relay && l.trusted_networks.is_empty() {
                return Err(invalid(
                    &format!("listener[{i}].trusted_networks"),
                    "a relay listener needs at least one trusted network".into(),
                ));
            }
        }
        for (key, d) in [
            ("outbound", &self.outbound),
            ("inbound", &self.inbound.delivery()),
        ] {
            let verified = d.tls == TlsMode::Required
                || matches!(
                    d.upstream,
                    Target::Smtp {
                        implicit_tls: true,
                        ..
                    }
                ) && d.tls != TlsMode::Opportunistic;
            if d.credentials_file.is_some() && !verified {
                return Err(invalid(
                    &format!("{key}.credentials_file"),
                    "credentials are only sent over verified TLS: set tls = \"required\"".into(),
                ));
            }
        }
        if self.limits.command_timeout().is_zero() {
            return Err(invalid(
                "limits.command_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        if self.limits.data_timeout_secs == 0 {
            return Err(invalid(
                "limits.data_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        if !(1..=crate::nesting::MAX_DEPTH_CEILING).contains(&self.limits.max_mime_depth) {
            return Err(invalid(
                "limits.max_mime_depth",
                format!(
                    "must be between 1 and {}",
                    crate::nesting::MAX_DEPTH_CEILING
                ),
            ));
        }
        if self.queue.concurrency == 0 {
            return Err(invalid("queue.concurrency", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The session slots of listener `l`: its own `max_connections`, else `[limits]
    /// max_connections`, else its role's default.
    pub fn listener_max_connections(&self, l: &ListenerConfig) -> usize {
        l.max_connections
            .or(self.limits.max_connections)
            .unwrap_or_else(|| l.role.default_max_connections())
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("congvan.db").display()),
        }
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_example() {
        let text = r#"
hostname = "gw.hadong.hanoi.gov.vn"
data_dir = "/var/lib/congvan"
database_url = "sqlite:///var/lib/congvan/congvan.db"
policy_dir = "/etc/congvan/policies"
max_message_size = 36700160
[tls]
cert = "/etc/congvan/tls/fullchain.pem"
key = "/etc/congvan/tls/key.pem"
[[listener]]
role = "submission"
bind = "0.0.0.0:587"
[[listener]]
role = "submissions"
bind = "0.0.0.0:465"
[[listener]]
role = "relay"
bind = "127.0.0.1:10025"
trusted_networks = ["127.0.0.0/8"]
[[listener]]
role = "inbound"
bind = "0.0.0.0:25"
[outbound]
upstream = "smtp://mail.hanoi.gov.vn:587"
tls = "required"
ca_file = "/etc/congvan/upstream-ca.pem"
[inbound]
local_domains = ["hadong.hanoi.gov.vn"]
deliver_to = "smtp://10.0.0.5:25"
tls = "opportunistic"
"#;
        let cfg = Config::from_toml(text, Path::new("t.toml")).unwrap();
        assert_eq!(cfg.listeners.len(), 4);
        assert_eq!(
            cfg.outbound.upstream,
            Target::Smtp {
                host: "mail.hanoi.gov.vn".into(),
                port: 587,
                implicit_tls: false
            }
        );
        assert!(cfg.listeners[2].is_trusted("127.0.0.9".parse().unwrap()));
        assert!(!cfg.listeners[2].is_trusted("10.0.0.9".parse().unwrap()));
        assert!(cfg.listeners[2].is_trusted("::ffff:127.0.0.1".parse().unwrap()));
        assert!(cfg.inbound.is_local_domain("HADONG.hanoi.gov.vn"));
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("outbox:/x/y").unwrap(),
            Target::Outbox("/x/y".into())
        );
        assert_eq!(
            Target::parse("smtps://[::1]").unwrap(),
            Target::Smtp {
                host: "::1".into(),
                port: 465,
                implicit_tls: true
            }
        );
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("outbox:").is_err());
    }

    #[test]
    fn upstream_credentials_need_verified_tls() {
        let base = "hostname = \"h\"\ndata_dir = \"/d\"\npolicy_dir = \"/p\"\n[inbound]\ndeliver_to = \"outbox:/i\"\n[outbound]\nupstream = \"smtp://m:587\"\ncredentials_file = \"/c\"\n";
        let err = Config::from_toml(&format!("{base}tls = \"opportunistic\"\n"), Path::new("t"))
            .unwrap_err();
        assert!(err.to_string().contains("credentials_file"), "{err}");
        assert!(Config::from_toml(&format!("{base}tls = \"required\"\n"), Path::new("t")).is_ok());
    }

    #[test]
    fn relay_without_networks_is_refused() {
        let text = r#"
hostname = "h"
data_dir = "/d"
policy_dir = "/p"
[[listener]]
role = "relay"
bind = "127.0.0.1:1"
[outbound]
upstream = "outbox:/o"
[inbound]
deliver_to = "outbox:/i"
"#;
        let err = Config::from_toml(text, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("trusted_networks"), "{err}");
    }

    #[test]
    fn connection_slots_per_listener_and_deadlines() {
        let base = "hostname = \"h\"\ndata_dir = \"/d\"\npolicy_dir = \"/p\"\n[outbound]\nupstream = \"outbox:/o\"\n[inbound]\ndeliver_to = \"outbox:/i\"\n";
        let listeners = "[[listener]]\nrole = \"inbound\"\nbind = \"127.0.0.1:1\"\n[[listener]]\nrole = \"relay\"\nbind = \"127.0.0.1:2\"\ntrusted_networks = [\"127.0.0.0/8\"]\nmax_connections = 7\n";
        let cfg = Config::from_toml(&format!("{base}{listeners}"), Path::new("t")).unwrap();
        assert_eq!(cfg.listener_max_connections(&cfg.listeners[0]), 500);
        assert_eq!(cfg.listener_max_connections(&cfg.listeners[1]), 7);
        assert_eq!(cfg.limits.command_timeout(), Duration::from_secs(300));
        assert_eq!(cfg.limits.data_timeout(), Duration::from_secs(600));
        assert_eq!(cfg.limits.min_data_rate, 500);
        // [limits] max_connections is every listener's default; the old idle_timeout_secs
        // still sets the command deadline.
        let text =
            format!("{base}{listeners}[limits]\nmax_connections = 40\nidle_timeout_secs = 9\n");
        let cfg = Config::from_toml(&text, Path::new("t")).unwrap();
        assert_eq!(cfg.listener_max_connections(&cfg.listeners[0]), 40);
        assert_eq!(cfg.listener_max_connections(&cfg.listeners[1]), 7);
        assert_eq!(cfg.limits.command_timeout(), Duration::from_secs(9));
        let text =
            format!("{base}{listeners}[limits]\ncommand_timeout_secs = 3\nidle_timeout_secs = 9\n");
        let cfg = Config::from_toml(&text, Path::new("t")).unwrap();
        assert_eq!(cfg.limits.command_timeout(), Duration::from_secs(3));
        let zero = format!(
            "{base}[[listener]]\nrole = \"inbound\"\nbind = \"127.0.0.1:1\"\nmax_connections = 0\n"
        );
        let err = Config::from_toml(&zero, Path::new("t")).unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
        let zero = format!("{base}[limits]\ndata_timeout_secs = 0\n");
        let err = Config::from_toml(&zero, Path::new("t")).unwrap_err();
        assert!(err.to_string().contains("data_timeout_secs"), "{err}");
    }

    #[test]
    fn mime_depth_limit_defaults_to_50_and_is_bounded() {
        let base = "hostname = \"h\"\ndata_dir = \"/d\"\npolicy_dir = \"/p\"\n[outbound]\nupstream = \"outbox:/o\"\n[inbound]\ndeliver_to = \"outbox:/i\"\n";
        let cfg = Config::from_toml(base, Path::new("t")).unwrap();
        assert_eq!(cfg.limits.max_mime_depth, 50);
        let cfg = Config::from_toml(
            &format!("{base}[limits]\nmax_mime_depth = 20\n"),
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(cfg.limits.max_mime_depth, 20);
        for bad in [0, 101, 50000] {
            let err = Config::from_toml(
                &format!("{base}[limits]\nmax_mime_depth = {bad}\n"),
                Path::new("t"),
            )
            .unwrap_err();
            assert!(err.to_string().contains("max_mime_depth"), "{err}");
        }
    }
}
