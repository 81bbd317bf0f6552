//! `template set|list|remove` and `campaign set|list`: the templates logged
//! mail copies cost, duration, interaction group and campaign from, as in
//! Business Central, and a minimal campaign record.

use anyhow::anyhow;
use mailscribe_core::InteractionTemplate;
use mailscribe_store::{Campaign, Store, StoreError};

use crate::{CampaignCommand, Failure, TemplateCommand, exit};

fn usage(error: anyhow::Error) -> Failure {
    Failure::new(exit::USAGE, error)
}

fn code_of(text: &str, what: &str) -> Result<String, Failure> {
    let code = text.trim().to_uppercase();
    if code.is_empty() || code.len() > 20 || code.contains(char::is_whitespace) {
        return Err(usage(anyhow!(
            "a {what} has 1 to 20 characters and no spaces"
        )));
    }
    Ok(code)
}

pub(crate) async fn template(store: &Store, command: TemplateCommand) -> Result<(), Failure> {
    match command {
        TemplateCommand::Set {
            code,
            cost,
            minutes,
            description,
            group,
            campaign,
        } => {
            let code = code_of(&code, "template code")?;
            let cost = cost
                .parse()
                .map_err(|err| usage(anyhow!("--cost: {err}")))?;
            let campaign = match campaign.map(|c| c.trim().to_uppercase()) {
                Some(no) if !no.is_empty() => {
                    if !store.campaigns().await?.iter().any(|c| c.no == no) {
                        return Err(usage(anyhow!(
                            "there is no campaign {no}: `mailscribe campaign set {no} --description ...` first"
                        )));
                    }
                    Some(no)
                }
                other => other,
            };
            let existing = store.template(&code).await?;
            let template = InteractionTemplate {
                description: description
                    .or(existing.map(|t| t.description))
                    .unwrap_or_else(|| code.clone()),
                code,
                cost,
                duration_minutes: minutes,
                interaction_group: group.map(|g| g.trim().to_owned()),
                campaign_no: campaign,
            };
            store.save_template(&template).await?;
            println!(
                "template {}: cost {}, {} minutes",
                template.code, template.cost, template.duration_minutes
            );
        }
        TemplateCommand::List => {
            let in_use = store.settings().await?.email_template;
            println!("code\tdescription\tcost\tminutes\tgroup\tcampaign\tin_use");
            for t in store.templates().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.code,
                    t.description.replace(['\t', '\n'], " "),
                    t.cost,
                    t.duration_minutes,
                    t.interaction_group.unwrap_or_default(),
                    t.campaign_no.unwrap_or_default(),
                    t.code == in_use
                );
            }
        }
        TemplateCommand::Remove { code } => {
            let code = code_of(&code, "template code")?;
            match store.remove_template(&code).await {
                Ok(true) => {
                    println!("template {code} removed; entries made with it keep their values")
                }
                Ok(false) => {
                    return Err(Failure::new(
                        exit::OTHER,
                        anyhow!("there is no template {code}"),
                    ));
                }
                Err(StoreError::Conflict(reason)) => {
                    return Err(Failure::new(exit::OTHER, anyhow!(reason)));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

pub(crate) async fn campaign(store: &Store, command: CampaignCommand) -> Result<(), Failure> {
    match command {
        CampaignCommand::Set {
            no,
            description,
            starts,
            ends,
        } => {
            let day =
                |text: Option<String>, flag: &str| -> Result<Option<chrono::NaiveDate>, Failure> {
                    text.map(|t| {
                        t.trim()
                            .parse()
                            .map_err(|_| usage(anyhow!("{flag} is a day like 2026-03-31")))
                    })
                    .transpose()
                };
            let campaign = Campaign {
                no: code_of(&no, "campaign number")?,
                description: description.trim().to_owned(),
                starts_on: day(starts, "--starts")?,
                ends_on: day(ends, "--ends")?,
            };
            if let (Some(starts), Some(ends)) = (campaign.starts_on, campaign.ends_on)
                && ends < starts
            {
                return Err(usage(anyhow!("--ends comes before --starts")));
            }
            store.save_campaign(&campaign).await?;
            println!("campaign {} saved", campaign.no);
        }
        CampaignCommand::List => {
            println!("no\tdescription\tstarts\tends");
            for c in store.campaigns().await? {
                let day =
                    |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}",
                    c.no,
                    c.description.replace(['\t', '\n'], " "),
                    day(c.starts_on),
                    day(c.ends_on)
                );
            }
        }
    }
    Ok(())
}
