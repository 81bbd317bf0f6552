//! Moving over from Business Central: `interactions import-bc`, and the
//! previews (`--dry-run`) of the directory imports, which read Business
//! Central's own list exports as well as our files.

use anyhow::anyhow;
use mailscribe_core::import::{self, ListFile, ListFormat};
use mailscribe_core::{BcReadOptions, Contact, Salesperson, read_bc_interactions};
use mailscribe_store::{Store, StoreError};

use crate::{Failure, exit};

/// What a directory file was read as, for the preview and the summary.
fn describe<T>(file: &ListFile<T>) -> String {
    let mut text = file.format.describe().to_owned();
    if file.delimiter == b';' {
        text.push_str(", separated by ';'");
    }
    if !file.ignored_columns.is_empty() {
        text.push_str(&format!(
            "; columns not imported: {}",
            file.ignored_columns.join(", ")
        ));
    }
    text
}

/// `salespeople import --dry-run`: what would be imported, row by row.
pub(crate) fn preview_salespeople(path: &std::path::Path, file: &ListFile<Salesperson>) {
    println!("{}: {}", path.display(), describe(file));
    println!("line\tcode\tname\temail");
    for (line, person) in &file.rows {
        let addresses: Vec<String> = person.addresses.iter().map(ToString::to_string).collect();
        println!(
            "{line}\t{}\t{}\t{}",
            person.code,
            person.name,
            addresses.join(";")
        );
    }
    println!(
        "would import {} salespeople; nothing was changed (dry run)",
        file.rows.len()
    );
}

/// `contacts import --dry-run`.
pub(crate) fn preview_contacts(path: &std::path::Path, file: &ListFile<Contact>) {
    println!("{}: {}", path.display(), describe(file));
    println!("line\tno\tname\ttype\tcompany\temail\tprivacy_blocked");
    for (line, contact) in &file.rows {
        let addresses: Vec<String> = contact.addresses.iter().map(ToString::to_string).collect();
        let flag = match contact.privacy_blocked {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        };
        println!(
            "{line}\t{}\t{}\t{}\t{}\t{}\t{flag}",
            contact.no,
            contact.name,
            contact.kind.as_str(),
            contact.company_name.as_deref().unwrap_or(""),
            addresses.join(";")
        );
    }
    println!(
        "would import {} contacts; nothing was changed (dry run)",
        file.rows.len()
    );
}

/// The line printed after a directory import from a Business Central file.
pub(crate) fn format_note<T>(file: &ListFile<T>) -> Option<String> {
    (file.format == ListFormat::BusinessCentral).then(|| format!("read as {}", describe(file)))
}

pub(crate) struct ImportBcArgs {
    pub(crate) file: std::path::PathBuf,
    pub(crate) date_format: Option<String>,
    pub(crate) decimal_comma: bool,
    pub(crate) create_missing: bool,
    pub(crate) dry_run: bool,
}

/// `interactions import-bc FILE.csv`.
pub(crate) async fn import_interactions(store: &Store, args: ImportBcArgs) -> Result<(), Failure> {
    let bytes = std::fs::read(&args.file).map_err(|err| {
        Failure::new(
            exit::USAGE,
            anyhow!("cannot read {}: {err}", args.file.display()),
        )
    })?;
    let options = BcReadOptions {
        date_format: args.date_format.clone(),
        decimal_comma: args.decimal_comma,
        time_zone: store.settings().await?.time_zone,
    };
    let file = read_bc_interactions(&bytes, &options)
        .map_err(|errors| not_imported(&args.file, errors))?;
    let summary = match store
        .import_bc_interactions(&file.rows, args.create_missing, args.dry_run)
        .await
    {
        Ok(summary) => summary,
        Err(StoreError::Conflict(message)) => {
            return Err(Failure::new(
                exit::OTHER,
                anyhow!(
                    "{} was not imported:\n  {}",
                    args.file.display(),
                    message.replace('\n', "\n  ")
                ),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let mut read_as = format!(
        "{}: Business Central Interaction Log Entries",
        args.file.display()
    );
    if file.delimiter == b';' {
        read_as.push_str(", separated by ';'");
    }
    if !file.ignored_columns.is_empty() {
        read_as.push_str(&format!(
            "; columns not imported: {}",
            file.ignored_columns.join(", ")
        ));
    }
    println!("{read_as}");
    let verb = if args.dry_run {
        "would import"
    } else {
        "imported"
    };
    println!(
        "{verb} {} entries ({} of the {} rows were imported before)",
        summary.added,
        summary.already_imported,
        file.rows.len()
    );
    if !summary.contacts_created.is_empty() {
        let verb = if args.dry_run {
            "would create"
        } else {
            "created"
        };
        println!("{verb} contacts: {}", summary.contacts_created.join(", "));
    }
    if !summary.salespeople_created.is_empty() {
        let verb = if args.dry_run {
            "would create"
        } else {
            "created"
        };
        println!(
            "{verb} salespeople: {}",
            summary.salespeople_created.join(", ")
        );
    }
    if args.dry_run {
        println!("nothing was changed (dry run)");
    } else {
        let detail = format!(
            "{} entries from Business Central ({} already there, {} contacts and {} salespeople created)",
            summary.added,
            summary.already_imported,
            summary.contacts_created.len(),
            summary.salespeople_created.len()
        );
        crate::accounts::audit(store, "interactions_imported", None, Some(detail)).await?;
    }
    Ok(())
}

fn not_imported(file: &std::path::Path, errors: Vec<import::RowError>) -> Failure {
    let mut text = format!(
        "{} was not imported ({} problems; nothing was changed):",
        file.display(),
        errors.len()
    );
    for error in &errors {
        text.push_str(&format!("\n  {error}"));
    }
    Failure::new(exit::OTHER, anyhow!(text))
}
