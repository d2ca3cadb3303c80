//! The command line (`tongban …`). Every command finds its data the way `serve` does: the
//! default `./data`, or the file given with `--config` / `TONGBAN_CONFIG`, plus `TONGBAN_*`
//! variables. Failures exit non-zero.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tongban_identity::{InitialAdmin, NewUser, UserProfile};
use tongban_platform::Config;

use crate::boot::open;

/// tongban (通办): county e-government platform.
#[derive(Debug, Parser)]
#[command(name = "tongban", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "TONGBAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (127.0.0.1:8080 by default).
    Serve {
        /// Load the demo county 嘉禾县 on first start.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Create the three administrator accounts on a fresh installation.
    Init {
        /// Name of the root unit.
        #[arg(long, default_value = "县人民政府")]
        root_unit: String,
    },
    /// Manage staff accounts.
    User {
        /// What to do with accounts.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Audit trail tools.
    Audit {
        /// What to do with the trail.
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// The certificate authority (证书管理).
    Pki {
        /// What to do with the CA.
        #[command(subcommand)]
        action: PkiCommand,
    },
    /// Verify a sealed document package (验章): signer, unit, time, certificate status, and
    /// whether the content is intact; exits 1 unless everything holds.
    Verify {
        /// The package (`.tbseal.json`).
        file: std::path::PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configuration tools.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigCommand,
    },
}

/// `tongban user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; prints a one-time password.
    Create {
        /// Log-in name.
        #[arg(long)]
        username: String,
        /// Real name.
        #[arg(long)]
        name: String,
        /// Unit id (see the units page or `GET /api/v1/units`).
        #[arg(long)]
        unit_id: i64,
        /// Position.
        #[arg(long, default_value = "")]
        position: String,
    },
    /// Reset a password to a one-time password (printed).
    ResetPassword {
        /// Log-in name.
        username: String,
    },
    /// Lock an account until unlocked.
    Lock {
        /// Log-in name.
        username: String,
    },
    /// Unlock an account (also clears a lock-out).
    Unlock {
        /// Log-in name.
        username: String,
    },
    /// Reset an account's second factor (lost phone): TOTP and its recovery codes are removed,
    /// its sessions and API tokens end; it enrols again at the next log-in.
    ResetTotp {
        /// Log-in name.
        username: String,
    },
}

/// `tongban pki …`
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Make the root and issuing CA if there are none (the server also does at start).
    Init,
    /// List the authorities and every issued certificate.
    List,
    /// Write the current revocation list (DER) to a file.
    Crl {
        /// Where to write it.
        #[arg(long, default_value = "ca.crl")]
        out: std::path::PathBuf,
    },
    /// Revoke a certificate by serial number (hex).
    Revoke {
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason: 1 key compromise, 3 affiliation changed, 4 superseded,
        /// 5 cessation of operation, 0 unspecified.
        #[arg(long, default_value_t = 0)]
        reason: u8,
    },
}

/// `tongban audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain and the signed checkpoints of every checkpoint file (primary and mirror);
    /// exit 1 naming the first problem.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed checkpoint of the chain head now.
    Checkpoint,
}

/// `tongban config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration, the database connection and the blob store.
    Check,
}

/// Prints the one-time passwords of the initial administrators.
pub fn print_initial_admins(admins: &[InitialAdmin]) {
    println!("\nThe three administrators were created. One-time passwords (shown once; change at first log-in):");
    for a in admins {
        println!("  {:<10} {:<8} {}", a.username, a.role, a.password);
    }
    println!("Each of them also enrols a TOTP authenticator at first log-in.\n");
}

/// A domain error in the console's language (from `LANG`; Chinese unless it asks for English).
fn console_message(e: &tongban_platform::DomainError) -> String {
    let lang = std::env::var("LANG").ok().and_then(|l| tongban_web::i18n::Lang::parse(&l)).unwrap_or_default();
    tongban_web::localized_message(&tongban_web::i18n::Tr { lang }, e)
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { demo } => crate::server::serve(config, demo).await,
        Command::Migrate => {
            let opened = open(config).await?;
            println!("database is at migration {}", tongban_platform::migrate::latest_version());
            opened.db.close().await;
            Ok(())
        }
        Command::Init { root_unit } => {
            let opened = open(config).await?;
            let admins = opened.identity.init(&root_unit).await.map_err(|e| anyhow::anyhow!("{}", console_message(&e)))?;
            print_initial_admins(&admins);
            Ok(())
        }
        Command::User { action } => user(config, action).await,
        Command::Audit { action } => audit(config, action).await,
        Command::Pki { action } => pki(config, action).await,
        Command::Verify { file, json } => verify(config, &file, json).await,
        Command::Config { action: ConfigCommand::Check } => {
            let opened = open(config).await.context("configuration is valid but the database or the blob store could not be opened")?;
            crate::boot::check_blobs(&opened).await?;
            println!(
                "configuration ok; database {} reachable; blob store reachable",
                crate::boot::redact_url(&opened.config.database_url())
            );
            Ok(())
        }
    }
}

async fn user(config: Config, action: UserCommand) -> anyhow::Result<()> {
    let opened = open(config).await?;
    let ids = &opened.identity;
    let fail = |e: tongban_platform::DomainError| anyhow::anyhow!("{}", console_message(&e));
    match action {
        UserCommand::Create { username, name, unit_id, position } => {
            let input = NewUser { username: username.clone(), profile: UserProfile::new(&name, unit_id, &position) };
            let (id, password) = ids.cli_create_user(input).await.map_err(fail)?;
            println!("created {username} (id {id}); one-time password: {password}");
        }
        UserCommand::ResetPassword { username } => {
            let password = ids.cli_reset_password(&username).await.map_err(fail)?;
            println!("{username}: one-time password: {password}");
        }
        UserCommand::Lock { username } => {
            ids.cli_set_locked(&username, true).await.map_err(fail)?;
            println!("{username} locked");
        }
        UserCommand::Unlock { username } => {
            ids.cli_set_locked(&username, false).await.map_err(fail)?;
            println!("{username} unlocked");
        }
        UserCommand::ResetTotp { username } => {
            ids.cli_reset_totp(&username).await.map_err(fail)?;
            println!("{username}: second factor removed; it enrols again at the next log-in");
        }
    }
    Ok(())
}

async fn pki(config: Config, action: PkiCommand) -> anyhow::Result<()> {
    let opened = open(config).await?;
    let secrets = tongban_crypto::seal::SecretBox::load_or_create(&opened.config.secret_key_path()).context("loading the secret key")?;
    let ca = tongban_pki::ca::CaService::new(opened.db.clone(), opened.audit.clone(), secrets, &opened.config.public_url());
    let fail = |e: tongban_platform::DomainError| anyhow::anyhow!("{}", console_message(&e));
    match action {
        PkiCommand::Init => {
            let made = ca.ensure().await.map_err(fail)?;
            println!("{}", if made { "certificate authority created" } else { "certificate authority already present" });
            for a in ca.authorities().await.map_err(fail)? {
                println!("{:8} {} serial {}", a.kind, a.subject, a.serial);
            }
        }
        PkiCommand::List => {
            for a in ca.authorities().await.map_err(fail)? {
                println!("{:8} {} serial {}", a.kind, a.subject, a.serial);
            }
            for c in ca.all_certificates().await.map_err(fail)? {
                let state = if c.revoked_at.is_some() { "revoked" } else { "valid" };
                println!("{} {:5} {:4} {:7} {}", c.serial, c.profile, c.algorithm, state, c.subject);
            }
        }
        PkiCommand::Crl { out } => {
            let der = ca.crl().await.map_err(fail)?;
            std::fs::write(&out, &der).with_context(|| format!("writing {}", out.display()))?;
            println!("CRL written to {} ({} bytes)", out.display(), der.len());
        }
        PkiCommand::Revoke { serial, reason } => {
            ca.revoke_as(&tongban_audit::Actor::system("cli"), &serial, reason).await.map_err(fail)?;
            println!("{serial} revoked (reason {reason}); it is on the next CRL");
        }
    }
    Ok(())
}

async fn verify(config: Config, file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let opened = open(config).await?;
    let secrets = tongban_crypto::seal::SecretBox::load_or_create(&opened.config.secret_key_path()).context("loading the secret key")?;
    let ca = tongban_pki::ca::CaService::new(opened.db.clone(), opened.audit.clone(), secrets, &opened.config.public_url());
    let report = ca.verify(&bytes).await.map_err(|e| anyhow::anyhow!("{}", console_message(&e)))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("unit:        {}", report.unit);
        println!("signer:      {} (serial {})", report.signer, report.serial);
        println!("sealed at:   {}", report.signed_at);
        println!("document:    {} — {}", report.file_name, if report.content_intact { "intact" } else { "CHANGED" });
        println!("signature:   {}", if report.signature_valid && report.chain_valid { "valid" } else { "INVALID" });
        println!("certificate: {}", report.certificate_status);
        for p in &report.problems {
            println!("problem:     {p}");
        }
    }
    if !report.ok() {
        bail!("the seal does not verify");
    }
    Ok(())
}

async fn audit(config: Config, action: AuditCommand) -> anyhow::Result<()> {
    let opened = open(config).await?;
    match action {
        AuditCommand::Checkpoint => match opened.audit.checkpoint(&opened.db).await? {
            Some(cp) => {
                println!("checkpoint written: seq {} hash {}", cp.seq, cp.hash);
                for sink in opened.audit.checkpoint_status().sinks {
                    let state = match (sink.holds_latest, sink.last_error.is_empty()) {
                        (Some(true), _) => "written".to_string(),
                        (_, false) => format!("FAILED: {}", sink.last_error),
                        _ => "not written".to_string(),
                    };
                    println!("  {:<8} {}  {state}", sink.kind.as_str(), sink.target);
                }
            }
            None => println!("no new records since the last checkpoint"),
        },
        AuditCommand::Verify { json } => {
            let report = opened.audit.verify(&opened.db).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.ok() {
                println!(
                    "audit trail intact: {} records, {} signed checkpoints in {}",
                    report.records,
                    report.checkpoints,
                    report.checkpoint_files.join(", ")
                );
            } else {
                for p in &report.problems {
                    println!("{:?} at {}: {}", p.kind, p.seq, p.message);
                }
            }
            if !report.ok() {
                let first = &report.problems[0];
                bail!("audit trail broken: first problem at record {}: {}", first.seq, first.message);
            }
        }
    }
    Ok(())
}
