//! `congvan cert`: import and retire signing identities, trust anchors and CRLs.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sea_orm::DatabaseConnection;

use super::{load_config, open_db, print_table, read_secret, Cli, CliResult, Failure};
use crate::config::Config;
use crate::pki::store;

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Import a signing identity for mail whose From domain is one of --domain.
    Import(ImportArgs),
    /// List signing identities.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one identity and whether it can sign now.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Retire an identity: messages needing it are held, never sent unsigned.
    Disable { id: i64 },
    /// Put a disabled identity back in service (documents held meanwhile wait for
    /// `queue release`).
    Enable { id: i64 },
    /// Set or remove the office's seal image shown on sealed PDFs (Decree 30/2020 Appendix I).
    SealImage(SealImageArgs),
    /// Exit 1 when an active identity, a trust anchor, the TLS certificate or a CRL (its
    /// nextUpdate, the newest of each issuer) expires within N days (for a daily timer).
    Expiring {
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long)]
        json: bool,
    },
    /// Trust anchors for verifying incoming mail.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(CrlCmd),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["p12", "cert", "pkcs11"])))]
pub struct ImportArgs {
    /// A PKCS#12 (.p12/.pfx) file holding the certificate chain and key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key"])]
    p12: Option<PathBuf>,
    /// The PKCS#12 password: first line of this file (prompted for when absent).
    #[arg(long, value_name = "F", requires = "p12")]
    password_file: Option<PathBuf>,
    /// PEM certificate chain, signer first or in any order (with --key; or with --pkcs11 when
    /// the token does not keep the certificate).
    #[arg(long, value_name = "CHAIN.pem")]
    cert: Option<PathBuf>,
    /// PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    #[arg(
        long,
        value_name = "KEY.pem",
        requires = "cert",
        conflicts_with = "pkcs11"
    )]
    key: Option<PathBuf>,
    /// The key on a token or HSM, as an RFC 7512 URI: "pkcs11:token=<label>;object=<label>".
    /// The key never leaves the token.
    #[arg(long, value_name = "URI", requires = "module", conflicts_with = "p12")]
    pkcs11: Option<String>,
    /// The token's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "PATH", requires = "pkcs11")]
    module: Option<PathBuf>,
    /// The token's PIN: first line of this file (0600), which the daemon also reads unless
    /// the systemd credential congvan-pin-<ID> is given (prompted for when absent).
    #[arg(long, value_name = "F", requires = "pkcs11")]
    pin_file: Option<PathBuf>,
    /// From domain(s) this identity seals.
    #[arg(long = "domain", value_name = "D", required = true, num_args = 1..)]
    domains: Vec<String>,
    #[command(flatten)]
    image: SealImageOpts,
}

/// The seal image's options, shared by `cert import` and `cert seal-image`.
#[derive(Args, Debug)]
pub struct SealImageOpts {
    /// The office's seal as a PNG with a transparent background, red, shown at the seal's
    /// real size over the left third of the competent signer's visible PDF signature.
    #[arg(long, value_name = "FILE.png")]
    seal_image: Option<PathBuf>,
    /// The seal's real width in millimetres, when the PNG does not record its resolution
    /// (pHYs) or records a wrong one.
    #[arg(long, value_name = "MM", requires = "seal_image")]
    seal_width_mm: Option<f32>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["seal_image", "remove"])))]
pub struct SealImageArgs {
    /// The identity.
    id: i64,
    #[command(flatten)]
    image: SealImageOpts,
    /// Remove the seal image: PDF seals become invisible.
    #[arg(long, conflicts_with = "seal_image")]
    remove: bool,
}

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Add the CA certificate(s) of a PEM file.
    Add { file: PathBuf },
    /// List trust anchors.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a trust anchor.
    Remove { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum CrlCmd {
    /// Add a CRL (DER or PEM).
    Add { file: PathBuf },
}

/// A file the administrator names, read as the user who ran the command.
fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    super::as_invoker(|| std::fs::read(path))
        .map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn run(cli: &Cli, cmd: &CertCmd) -> CliResult {
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    let actor = crate::audit::cli_actor();
    match cmd {
        CertCmd::Import(a) => import(&db, &actor, &cfg, a).await,
        CertCmd::List { json } => list(&db, *json).await,
        CertCmd::Show { id, json } => show(&db, *id, *json).await,
        CertCmd::Disable { id } => disable(&db, &actor, *id).await,
        CertCmd::Enable { id } => {
            store::enable(&db, &actor, *id)
                .await
                .map_err(Failure::refused)?;
            println!("identity {id} enabled");
            Ok(())
        }
        CertCmd::SealImage(a) => seal_image(&db, &actor, a).await,
        CertCmd::Expiring { days, json } => {
            let tls = cfg.tls.as_ref().map(|t| t.cert.as_path());
            expiring(&db, tls, *days, *json).await
        }
        CertCmd::Trust(TrustCmd::Add { file }) => trust_add(&db, &actor, file).await,
        CertCmd::Trust(TrustCmd::List { json }) => trust_list(&db, *json).await,
        CertCmd::Trust(TrustCmd::Remove { id }) => trust_remove(&db, &actor, *id).await,
        CertCmd::Crl(CrlCmd::Add { file }) => crl_add(&db, &actor, file).await,
    }
}

/// `cert import`: a PKCS#12 file, or a PEM chain and key.
async fn import(db: &DatabaseConnection, actor: &str, cfg: &Config, a: &ImportArgs) -> CliResult {
    // The image is checked before anything is stored: a bad one imports nothing.
    let image = a.image.read()?;
    let info = match (&a.p12, &a.cert, &a.key) {
        _ if a.pkcs11.is_some() => {
            let (Some(uri), Some(module)) = (&a.pkcs11, &a.module) else {
                return Err(Failure::usage("--pkcs11 URI needs --module PATH"));
            };
            let pin = read_secret(a.pin_file.as_ref(), "token PIN: ", false)?;
            let chain = a.cert.as_ref().map(read).transpose()?;
            store::import_pkcs11(
                db,
                actor,
                &cfg.data_dir,
                uri,
                module,
                &pin,
                a.pin_file.as_deref(),
                chain.as_deref(),
                &a.domains,
            )
            .await
        }
        (Some(p12), _, _) => {
            let data = read(p12)?;
            let pw = read_secret(a.password_file.as_ref(), "PKCS#12 password: ", false)?;
            store::import_p12(db, actor, &cfg.data_dir, &data, &pw, &a.domains).await
        }
        (None, Some(cert), Some(key)) => {
            store::import_pem(
                db,
                actor,
                &cfg.data_dir,
                &read(cert)?,
                &read(key)?,
                &a.domains,
            )
            .await
        }
        _ => return Err(Failure::usage(
            "give --p12 FILE, --cert CHAIN.pem with --key KEY.pem, or --pkcs11 URI --module PATH",
        )),
    }
    .map_err(Failure::refused)?;
    println!(
        "identity {} imported: {} (serial {}, {}, until {}) for {}",
        info.id,
        info.subject,
        info.serial,
        info.algorithm,
        info.not_after,
        info.domains.join(", ")
    );
    let others = store::others_for(db, info.id, &info.domains)
        .await
        .map_err(Failure::refused)?;
    for o in &others {
        println!(
            "note: identity {} (serial {}, until {}) also seals for {}; the usable one that expires last signs. After a renewal, once this one works: congvan cert disable {}",
            o.id,
            o.serial,
            o.not_after,
            o.domains.join(", "),
            o.id
        );
    }
    if let Some((png, width)) = &image {
        let set = store::set_seal_image(db, actor, info.id, Some((png, *width)))
            .await
            .map_err(|e| {
                Failure::refused(format!(
                    "identity {} was imported without its seal image: {e}; try again with: congvan cert seal-image {} --seal-image FILE.png",
                    info.id, info.id
                ))
            })?;
        print_seal_image(set.as_ref());
    }
    Ok(())
}

/// A seal image as given: the PNG and, when given, the seal's width in mm.
type GivenImage = (Vec<u8>, Option<f32>);

impl SealImageOpts {
    /// The PNG and the width given, checked; `None` without `--seal-image`.
    fn read(&self) -> Result<Option<GivenImage>, Failure> {
        let Some(path) = &self.seal_image else {
            return Ok(None);
        };
        let png = read(path)?;
        crate::pdf::SealImage::from_png(&png, self.seal_width_mm)
            .map_err(|e| Failure::refused(format!("{}: {e}", path.display())))?;
        Ok(Some((png, self.seal_width_mm)))
    }
}

fn print_seal_image(info: Option<&store::SealImageInfo>) {
    match info {
        Some(i) => println!(
            "seal image: {}×{} px, {:.1} mm wide (sha256 {})",
            i.width_px, i.height_px, i.width_mm, i.sha256
        ),
        None => println!("seal image: none (PDF seals are invisible)"),
    }
}

/// `cert seal-image`: set or remove an identity's seal image.
async fn seal_image(db: &DatabaseConnection, actor: &str, a: &SealImageArgs) -> CliResult {
    let image = a.image.read()?;
    let set = store::set_seal_image(
        db,
        actor,
        a.id,
        image.as_ref().map(|(png, w)| (png.as_slice(), *w)),
    )
    .await
    .map_err(Failure::refused)?;
    print!("identity {}: ", a.id);
    print_seal_image(set.as_ref());
    Ok(())
}

/// `cert list`.
async fn list(db: &DatabaseConnection, as_json: bool) -> CliResult {
    let list = store::list(db).await.map_err(Failure::refused)?;
    if as_json {
        println!("{}", json(&list));
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|i| {
                vec![
                    i.id.to_string(),
                    i.status.clone(),
                    i.domains.join(","),
                    i.algorithm.clone(),
                    i.not_after.clone(),
                    i.days_left.to_string(),
                    i.subject.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "STATUS",
                "DOMAINS",
                "ALGORITHM",
                "NOT AFTER",
                "DAYS LEFT",
                "SUBJECT",
            ],
            &rows,
        );
        println!(
            "{} identit{}",
            list.len(),
            if list.len() == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// `cert show`.
async fn show(db: &DatabaseConnection, id: i64, as_json: bool) -> CliResult {
    let d = store::show(db, id).await.map_err(Failure::refused)?;
    if as_json {
        println!("{}", json(&d));
    } else {
        let (i, usable) = (&d.info, &d.usable);
        println!("id:          {}", i.id);
        println!("subject:     {}", i.subject);
        println!("issuer:      {}", i.issuer);
        println!("serial:      {}", i.serial);
        println!("algorithm:   {}", i.algorithm);
        println!("domains:     {}", i.domains.join(", "));
        println!("e-mail:      {}", i.emails.join(", "));
        println!(
            "valid:       {} .. {} ({} days left)",
            i.not_before, i.not_after, i.days_left
        );
        println!("status:      {} ({usable})", i.status);
        match (&i.pkcs11_uri, &i.pkcs11_module) {
            (Some(uri), Some(module)) => {
                println!("key:         on a token: {uri} (module {module})")
            }
            _ => println!("key:         in a file under the data directory"),
        }
        match &i.seal_image {
            Some(s) => println!(
                "seal image:  {}×{} px, {:.1} mm wide (sha256 {})",
                s.width_px, s.height_px, s.width_mm, s.sha256
            ),
            None => println!("seal image:  none (PDF seals are invisible)"),
        }
        println!(
            "signatures:  {} document(s) and {} PDF part(s) sealed with this certificate",
            d.signatures.messages, d.signatures.pdf_parts
        );
        if let Some(r) = &d.token_report {
            let what = match r.action.as_str() {
                "identity.token_recovered" => "signs again",
                "identity.pin_refused" => "PIN refused",
                _ => "cannot sign",
            };
            match &r.reason {
                Some(why) => println!("token:       {what} ({} by the daemon): {why}", r.at),
                None => println!("token:       {what} ({} by the daemon)", r.at),
            }
        }
    }
    Ok(())
}

/// `cert disable`.
async fn disable(db: &DatabaseConnection, actor: &str, id: i64) -> CliResult {
    store::disable(db, actor, id)
        .await
        .map_err(Failure::refused)?;
    println!("identity {id} disabled");
    Ok(())
}

/// `cert expiring`: fails when anything expires within `days`.
async fn expiring(
    db: &DatabaseConnection,
    tls: Option<&std::path::Path>,
    days: i64,
    as_json: bool,
) -> CliResult {
    let list = store::expiring(db, days, tls)
        .await
        .map_err(Failure::refused)?;
    if as_json {
        println!("{}", json(&list));
    } else if list.is_empty() {
        println!("nothing expires within {days} days");
    } else {
        for e in &list {
            println!(
                "{} {} expires {} ({} days): {}",
                e.kind, e.id, e.not_after, e.days_left, e.subject
            );
        }
    }
    if !list.is_empty() {
        return Err(Failure::refused(format!(
            "{} item(s) expire within {days} days",
            list.len()
        )));
    }
    Ok(())
}

/// `cert trust add`.
async fn trust_add(db: &DatabaseConnection, actor: &str, file: &PathBuf) -> CliResult {
    let added = store::trust_add(db, actor, &read(file)?)
        .await
        .map_err(Failure::refused)?;
    if added.is_empty() {
        println!("already trusted: nothing added");
    }
    for a in added {
        println!(
            "trust anchor {} added: {} (until {})",
            a.id, a.subject, a.not_after
        );
    }
    Ok(())
}

/// `cert trust list`.
async fn trust_list(db: &DatabaseConnection, as_json: bool) -> CliResult {
    let list = store::trust_list(db).await.map_err(Failure::refused)?;
    if as_json {
        println!("{}", json(&list));
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    a.not_after.clone(),
                    a.days_left.to_string(),
                    a.subject.clone(),
                ]
            })
            .collect();
        print_table(&["ID", "NOT AFTER", "DAYS LEFT", "SUBJECT"], &rows);
        println!("{} trust anchor(s)", list.len());
    }
    Ok(())
}

/// `cert trust remove`.
async fn trust_remove(db: &DatabaseConnection, actor: &str, id: i64) -> CliResult {
    store::trust_remove(db, actor, id)
        .await
        .map_err(Failure::refused)?;
    println!("trust anchor {id} removed");
    Ok(())
}

/// `cert crl add`.
async fn crl_add(db: &DatabaseConnection, actor: &str, file: &PathBuf) -> CliResult {
    let c = store::crl_add(db, actor, &read(file)?)
        .await
        .map_err(Failure::refused)?;
    println!(
        "CRL {} added: {} ({} revoked, next update {})",
        c.id,
        c.issuer,
        c.revoked,
        c.next_update.as_deref().unwrap_or("not given")
    );
    Ok(())
}
