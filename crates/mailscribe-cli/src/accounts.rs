//! `user list|passwd|set-role|disable|enable|remove`: accounts an admin
//! manages from a shell. Every change ends the user's sessions and revokes
//! their tokens (the store does both in the change's transaction).

use anyhow::anyhow;
use mailscribe_core::{Role, SalespersonCode};
use mailscribe_store::{Store, StoreError, UserChange};

use crate::{Failure, UserCommand, exit};

pub(crate) async fn user(store: &Store, command: UserCommand) -> Result<(), Failure> {
    let (name, change, done) = match command {
        UserCommand::Add {
            name,
            role,
            salesperson,
            password_env,
        } => {
            return crate::commands::add_user(
                store,
                &name,
                &role,
                salesperson.as_deref(),
                &password_env,
            )
            .await;
        }
        UserCommand::List => return list(store).await,
        UserCommand::Passwd { name, password_env } => {
            let password = new_password(&password_env, &name)?;
            let hash = mailscribe_web::hash_password(password)
                .await
                .map_err(|err| anyhow!(err))?;
            (name, UserChange::Password(hash), "password changed")
        }
        UserCommand::SetRole {
            name,
            role,
            salesperson,
        } => {
            let (role, code) = role_and_code(&role, salesperson.as_deref())?;
            (name, UserChange::Role(role, code), "role changed")
        }
        UserCommand::Disable { name } => (name, UserChange::Disable, "disabled"),
        UserCommand::Enable { name } => (name, UserChange::Enable, "enabled"),
        UserCommand::Remove { name } => (name, UserChange::Remove, "removed"),
    };
    match store.change_user(name.trim(), &change).await {
        Ok(()) => {
            audit(
                store,
                &format!("user_{}", done.replace(' ', "_")),
                Some(name.trim()),
                None,
            )
            .await?;
            println!(
                "user {}: {done}; their sessions ended and their API tokens were revoked",
                name.trim()
            );
            Ok(())
        }
        // Unknown user, last admin: exit 1 with the reason.
        Err(StoreError::Conflict(reason)) => Err(Failure::new(exit::OTHER, anyhow!(reason))),
        Err(err) => Err(err.into()),
    }
}

async fn list(store: &Store) -> Result<(), Failure> {
    println!("name\trole\tsalesperson_code\tstatus\tlast_sign_in_at");
    for row in store.list_users().await? {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            row.user.name,
            row.user.role.as_str(),
            row.user
                .salesperson
                .as_ref()
                .map(SalespersonCode::as_str)
                .unwrap_or(""),
            if row.disabled { "disabled" } else { "active" },
            row.last_sign_in_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// A role with the salesperson code that goes with it (and only with it).
pub(crate) fn role_and_code(
    role: &str,
    salesperson: Option<&str>,
) -> Result<(Role, Option<SalespersonCode>), Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let role: Role = role
        .parse()
        .map_err(|err: mailscribe_core::RoleError| usage(err.into()))?;
    let code = salesperson
        .map(SalespersonCode::parse)
        .transpose()
        .map_err(|err| usage(anyhow!("--salesperson: {err}")))?;
    if (role == Role::Salesperson) != code.is_some() {
        return Err(usage(anyhow!(
            "--salesperson CODE goes with --role salesperson, and only with it"
        )));
    }
    Ok((role, code))
}

/// A new password for `user` from the named environment variable, meeting
/// the rule of `mailscribe_core::check_new_password`.
pub(crate) fn new_password(var: &str, user: &str) -> Result<String, Failure> {
    let password = std::env::var(var)
        .map_err(|_| Failure::new(exit::USAGE, anyhow!("{var} must hold the new password")))?;
    mailscribe_core::check_new_password(&password, user)
        .map_err(|weak| Failure::new(exit::USAGE, anyhow!("{var}: {weak}")))?;
    Ok(password)
}

/// Records an event done from a shell: the actor is `cli:<system user>`.
pub(crate) async fn audit(
    store: &Store,
    event: &str,
    target: Option<&str>,
    detail: Option<String>,
) -> Result<(), Failure> {
    let event = mailscribe_store::AuditEvent {
        actor: format!("cli:{}", crate::commands::who_am_i()),
        client_address: None,
        event: event.to_owned(),
        target: target.map(str::to_owned),
        detail,
    };
    store.record_audit(&event, chrono::Utc::now()).await?;
    Ok(())
}
