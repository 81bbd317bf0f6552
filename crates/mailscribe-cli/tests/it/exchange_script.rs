//! `packaging/exchange/Set-MailscribeRules.ps1` cannot run here (no
//! PowerShell, no Exchange). This pure test checks what can be checked
//! without them: every parameter the script passes to an Exchange cmdlet is
//! one Microsoft documents for it (the list in
//! `packaging/exchange/documented-parameters.txt`), the scope values are
//! valid, both of Business Central's rules are there, and `-WhatIf` is
//! supported.

use std::collections::{BTreeMap, BTreeSet};

fn packaging(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/exchange")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// `cmdlet: name name ...` lines, without comments.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    packaging("documented-parameters.txt")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(key, names)| {
            (
                key.trim().to_owned(),
                names.split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

/// Each call of `cmdlet` in the script: the `-Parameter` names (and the
/// word after each) up to the end of the statement.
fn calls(script: &str, cmdlet: &str) -> Vec<Vec<(String, String)>> {
    let mut found = Vec::new();
    for line in script.lines() {
        let code = line.split_once(" #").map_or(line, |(code, _)| code);
        let mut rest = code;
        while let Some(at) = rest.find(cmdlet) {
            let after = &rest[at + cmdlet.len()..];
            // The statement ends at a pipe, a closing bracket or the line's end.
            let end = after.find(['|', ')', ';', '}']).unwrap_or(after.len());
            let words: Vec<&str> = after[..end].split_whitespace().collect();
            let mut parameters = Vec::new();
            for (index, word) in words.iter().enumerate() {
                if let Some(name) = word.strip_prefix('-')
                    && name.chars().next().is_some_and(char::is_alphabetic)
                {
                    let value = words.get(index + 1).copied().unwrap_or("");
                    parameters.push((name.to_owned(), value.trim_matches('\'').to_owned()));
                }
            }
            found.push(parameters);
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn the_exchange_script_uses_only_documented_parameters() {
    let script = packaging("Set-MailscribeRules.ps1");
    let documented = documented();
    let common = &documented["common"];
    let mut seen_cmdlets = 0;
    for cmdlet in [
        "New-TransportRule",
        "Set-TransportRule",
        "Get-TransportRule",
        "Get-Recipient",
    ] {
        let allowed = &documented[cmdlet];
        for call in calls(&script, cmdlet) {
            seen_cmdlets += 1;
            for (name, _) in &call {
                assert!(
                    allowed.contains(name) || common.contains(name),
                    "{cmdlet} -{name} is not among the documented parameters in documented-parameters.txt"
                );
            }
        }
    }
    assert!(
        seen_cmdlets >= 4,
        "the script calls the cmdlets ({seen_cmdlets} calls found)"
    );

    // The one call that changes anything creates the rule with the two
    // scopes and the blind copy, enforced.
    let creates = calls(&script, "New-TransportRule");
    let creates: Vec<_> = creates.iter().filter(|call| !call.is_empty()).collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    let names: BTreeSet<&str> = creates[0].iter().map(|(name, _)| name.as_str()).collect();
    for wanted in [
        "Name",
        "FromScope",
        "SentToScope",
        "BlindCopyTo",
        "Mode",
        "Priority",
    ] {
        assert!(
            names.contains(wanted),
            "New-TransportRule without -{wanted}"
        );
    }
    assert!(creates[0].contains(&("Mode".to_owned(), "Enforce".to_owned())));

    // The scopes the script asks for are valid values.
    for (parameter, key) in [
        ("FromScope", "FromScope values"),
        ("SentToScope", "SentToScope values"),
    ] {
        let values = &documented[key];
        for quoted in script.split(&format!("{parameter} = '")).skip(1) {
            let value = quoted.split('\'').next().unwrap();
            assert!(
                values.contains(value),
                "{parameter} '{value}' is not a documented value"
            );
        }
    }

    // Business Central's two rules, and -WhatIf.
    assert!(script.contains("'Log Email Sent to This Organization'"));
    assert!(script.contains("'Log Email Sent from This Organization'"));
    assert!(
        script.contains("SupportsShouldProcess = $true")
            && script.contains("$PSCmdlet.ShouldProcess(")
    );
    assert!(
        script.contains("not been run by the Mailscribe project"),
        "the script says it was never run"
    );
}
