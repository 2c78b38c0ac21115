//! `congvan account add|list|disable|enable|passwd`.

use std::path::PathBuf;

use clap::Subcommand;

use super::{load_config, open_db, print_table, read_password, Cli, CliResult, Failure};
use crate::accounts;

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Add a clerk account (the AUTH user name is NAME).
    Add {
        name: String,
        /// Addresses the account may use in MAIL FROM and the header From
        /// (user@domain, or @domain for the whole domain).
        #[arg(long = "allow-from", value_name = "ADDR", required = true, num_args = 1..)]
        allow_from: Vec<String>,
        /// Read the password from the first line of this file instead of prompting.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: it can no longer authenticate.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
    /// Set a new password.
    Passwd {
        name: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

pub async fn run(cli: &Cli, cmd: &AccountCmd) -> CliResult {
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    let actor = crate::audit::cli_actor();
    match cmd {
        AccountCmd::Add {
            name,
            allow_from,
            password_file,
        } => {
            let pw = read_password(password_file.as_ref(), &format!("Password for {name}: "))?;
            accounts::add(&db, &actor, name, allow_from, &pw)
                .await
                .map_err(Failure::refused)?;
            println!(
                "account {name} added, may send as {}",
                allow_from.join(", ")
            );
        }
        AccountCmd::List { json } => {
            let list = accounts::list(&db).await.map_err(Failure::refused)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            if a.disabled { "disabled" } else { "active" }.into(),
                            a.allowed_from.join(","),
                            a.created_at.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "STATUS", "ALLOWED FROM", "CREATED"], &rows);
                println!("{} account(s)", list.len());
            }
        }
        AccountCmd::Disable { name } => {
            accounts::set_disabled(&db, &actor, name, true)
                .await
                .map_err(Failure::refused)?;
            println!("account {name} disabled");
        }
        AccountCmd::Enable { name } => {
            accounts::set_disabled(&db, &actor, name, false)
                .await
                .map_err(Failure::refused)?;
            println!("account {name} enabled");
        }
        AccountCmd::Passwd {
            name,
            password_file,
        } => {
            let pw = read_password(
                password_file.as_ref(),
                &format!("New password for {name}: "),
            )?;
            accounts::set_password(&db, &actor, name, &pw)
                .await
                .map_err(Failure::refused)?;
            println!("password of {name} changed");
        }
    }
    Ok(())
}
