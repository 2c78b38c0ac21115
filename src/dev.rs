//! `serve --dev`: the embedded default. Creates `./congvan-dev/` once (SQLite database, a
//! development CA, a signing identity for dev.gov.vn, a TLS certificate for localhost, the
//! clerk account `vanthu` with a generated password, the shipped policies, outbox and inbox
//! directories) and returns the configuration to run on 127.0.0.1.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::config::Config;

pub const DEV_DIR: &str = "congvan-dev";
pub const DEV_DOMAIN: &str = "dev.gov.vn";
pub const DEV_ACCOUNT: &str = "vanthu";
/// The audit log's actor for what `serve --dev` provisions.
const DEV_ACTOR: &str = "dev-setup";

pub struct DevSetup {
    pub dir: PathBuf,
    pub config: Config,
    pub config_path: PathBuf,
    pub password: String,
    pub created: bool,
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "VN");
    d.push(
        DnType::OrganizationName,
        "congvan DEVELOPMENT ONLY - not a real office",
    );
    d.push(DnType::CommonName, cn);
    d
}

/// Makes the development PKI in `dir/pki`: CA, a signing identity for dev.gov.vn and a
/// localhost TLS cert.
pub fn make_pki(dir: &Path) -> anyhow::Result<()> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = dn("congvan DEVELOPMENT CA - do not trust in production");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    std::fs::write(pki.join("dev-ca.pem"), ca_cert.pem())?;

    let id_key = KeyPair::generate()?;
    let mut id = CertificateParams::default();
    id.distinguished_name = dn("Văn thư dev.gov.vn (DEVELOPMENT)");
    id.subject_alt_names = vec![SanType::Rfc822Name(
        format!("{DEV_ACCOUNT}@{DEV_DOMAIN}").try_into()?,
    )];
    id.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    id.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    id.not_before = now - time::Duration::days(1);
    id.not_after = now + time::Duration::days(825);
    let id_cert = id.signed_by(&id_key, &issuer)?;
    std::fs::write(
        pki.join("dev.gov.vn.chain.pem"),
        format!("{}{}", id_cert.pem(), ca_cert.pem()),
    )?;
    write_private(
        &pki.join("dev.gov.vn.key.pem"),
        id_key.serialize_pem().as_bytes(),
    )?;

    let tls_key = KeyPair::generate()?;
    let mut tls = CertificateParams::new(vec!["localhost".to_string()])?;
    tls.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    tls.distinguished_name = dn("localhost");
    tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    tls.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    tls.not_before = now - time::Duration::days(1);
    tls.not_after = now + time::Duration::days(825);
    let tls_cert = tls.signed_by(&tls_key, &issuer)?;
    std::fs::write(
        pki.join("tls.pem"),
        format!("{}{}", tls_cert.pem(), ca_cert.pem()),
    )?;
    write_private(&pki.join("tls.key.pem"), tls_key.serialize_pem().as_bytes())?;
    Ok(())
}

fn dev_config_text(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# congvan development configuration, written by `congvan serve --dev`.
# Everything here is for trying congvan out on one machine; nothing is production-ready.
hostname = "localhost"
data_dir = "{d}"
database_url = "sqlite://{d}/congvan.db"
policy_dir = "{d}/policies"

[tls]
cert = "{d}/pki/tls.pem"
key = "{d}/pki/tls.key.pem"

[[listener]]
role = "submission"
bind = "127.0.0.1:2587"
[[listener]]
role = "submissions"
bind = "127.0.0.1:2465"
[[listener]]
role = "relay"
bind = "127.0.0.1:10025"
trusted_networks = ["127.0.0.0/8", "::1/128"]
[[listener]]
role = "inbound"
bind = "127.0.0.1:2525"

[outbound]
upstream = "outbox:{d}/outbox"

[inbound]
local_domains = ["{DEV_DOMAIN}"]
deliver_to = "outbox:{d}/inbox"
"#
    )
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// Sets up `./congvan-dev` (once) under `base` and returns its configuration.
pub async fn prepare(base: &Path) -> anyhow::Result<DevSetup> {
    let dir = std::path::absolute(base.join(DEV_DIR))?;
    let config_path = dir.join("congvan.toml");
    let pw_path = dir.join("vanthu.password");
    let created = !config_path.exists();
    if created {
        std::fs::create_dir_all(&dir)?;
        make_pki(&dir)?;
        for sub in ["outbox", "inbox", "spool"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let local = Path::new("policies");
        let src = if local.is_dir() {
            local
        } else {
            shipped.as_path()
        };
        if src.is_dir() {
            copy_dir(src, &dir.join("policies"))?;
        } else {
            std::fs::create_dir_all(dir.join("policies"))?;
        }
        let mut raw = [0u8; 12];
        rand::fill(&mut raw);
        use base64::Engine;
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        write_private(&pw_path, format!("{password}\n").as_bytes())?;
        std::fs::write(&config_path, dev_config_text(&dir))?;
    }
    let config = Config::load(&config_path)?;
    let password = crate::util::read_password_file(&pw_path)?;
    let db = crate::store::open(&config.database_url()).await?;
    let have = crate::accounts::list(&db)
        .await?
        .into_iter()
        .any(|a| a.name == DEV_ACCOUNT);
    if !have {
        crate::accounts::add(
            &db,
            DEV_ACTOR,
            DEV_ACCOUNT,
            &[format!("{DEV_ACCOUNT}@{DEV_DOMAIN}")],
            &password,
        )
        .await?;
    }
    // The seal for dev.gov.vn, and its CA as a trust anchor, once.
    if !crate::pki::store::SealCache::has_identity(&db, DEV_DOMAIN).await? {
        let pki = dir.join("pki");
        crate::pki::store::import_pem(
            &db,
            DEV_ACTOR,
            &config.data_dir,
            &std::fs::read(pki.join("dev.gov.vn.chain.pem"))?,
            &std::fs::read(pki.join("dev.gov.vn.key.pem"))?,
            &[DEV_DOMAIN.to_string()],
        )
        .await?;
        crate::pki::store::trust_add(&db, DEV_ACTOR, &std::fs::read(pki.join("dev-ca.pem"))?)
            .await?;
    }
    db.close().await.ok();
    Ok(DevSetup {
        dir,
        config,
        config_path,
        password,
        created,
    })
}

/// What `serve --dev` prints: ports, password, and copy-paste commands.
pub fn banner(s: &DevSetup) -> String {
    let d = s.dir.display();
    format!(
        r#"congvan development gateway ({state} {d})
  DEVELOPMENT ONLY: the CA in {d}/pki is labelled as such; never trust it elsewhere.

  listening on 127.0.0.1:
    2587  submission  (STARTTLS + AUTH)      2465  submissions (implicit TLS + AUTH)
    10025 relay       (from 127.0.0.0/8)     2525  inbound     (for {DEV_DOMAIN})
  clerk account: {DEV_ACCOUNT}   password: {pw}   may send as {DEV_ACCOUNT}@{DEV_DOMAIN}
  outgoing mail lands in {d}/outbox, incoming in {d}/inbox
  CLI against this instance: congvan --config {cfg} queue list

Send a test document (in another terminal):
  python3 -c 'import smtplib,ssl; c=ssl.create_default_context(cafile="{d}/pki/dev-ca.pem"); s=smtplib.SMTP("localhost",2587); s.starttls(context=c); s.login("{DEV_ACCOUNT}","{pw}"); s.sendmail("{DEV_ACCOUNT}@{DEV_DOMAIN}",["vanthu@so-noivu.gov.vn"],"From: {DEV_ACCOUNT}@{DEV_DOMAIN}\r\nTo: vanthu@so-noivu.gov.vn\r\nSubject: [KHAN] Cong van thu nghiem\r\nX-Congvan-Urgency: khan\r\n\r\nNoi dung thu nghiem.\r\n".encode()); s.quit(); print("sent")'

Look at the result:
  ls -l {d}/outbox && cat {d}/outbox/*.envelope.json
  openssl smime -verify -CAfile {d}/pki/dev-ca.pem -purpose smimesign -in "$(ls -t {d}/outbox/*.eml | head -1)" -out /dev/null
"#,
        state = if s.created { "created" } else { "using" },
        pw = s.password,
        cfg = s.config_path.display(),
    )
}
