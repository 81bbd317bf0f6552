<#
.SYNOPSIS
Creates the two mail flow (transport) rules that send a blind copy of every
message between your organization and the outside world to Mailscribe's
queue mailbox. Safe to run again.

.DESCRIPTION
Business Central's email logging relies on two rules, and Mailscribe uses the
same two:

  "Log Email Sent to This Organization"    sender outside, recipients inside
  "Log Email Sent from This Organization"  sender inside, recipients outside

each with one action: Bcc the queue mailbox. New rules also get the
exception "unless sent to the queue mailbox" that docs/mail-server-setup.md
uses, so that mail addressed to the queue itself is not copied twice; an
existing rule is accepted with or without that exception, so rules made by
Business Central's own script are left as they are. For each rule this
script

  - creates it when no rule of that name exists;
  - leaves it alone when a rule of that name already does exactly this;
  - stops, changing nothing, when a rule of that name exists but differs
    (other scopes, another Bcc target, extra conditions, exceptions or
    actions, or not enforced), and says what differs.

Both rules are checked before either is created, so a difference in the
second rule stops the script before the first is made. Use -WhatIf to see
what would be created without creating it.

Run it in the Exchange Management Shell (Exchange Server) or in a session
opened with Connect-ExchangeOnline (Exchange Online).

This script has not been run by the Mailscribe project: PowerShell and
Exchange are not available where it is built. Its parameter names are
checked by a test against Microsoft's documented parameters of the cmdlets
it calls (see documented-parameters.txt next to it).

.PARAMETER QueueMailbox
The mailbox (or mail-enabled public folder) whose queue folder Mailscribe
reads, for example logging@contoso.example.

.PARAMETER Priority
The priority of new rules (0 is evaluated first). Default 0, so that no
earlier rule with "stop processing more rules" keeps the copies from being
made.

.PARAMETER InboundRuleName
The name of the rule for mail from outside. Defaults to Business Central's.

.PARAMETER OutboundRuleName
The name of the rule for mail to outside. Defaults to Business Central's.

.EXAMPLE
.\Set-MailscribeRules.ps1 -QueueMailbox logging@contoso.example -WhatIf

.EXAMPLE
.\Set-MailscribeRules.ps1 -QueueMailbox logging@contoso.example
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Mandatory = $true)]
    [string] $QueueMailbox,
    [int] $Priority = 0,
    [string] $InboundRuleName = 'Log Email Sent to This Organization',
    [string] $OutboundRuleName = 'Log Email Sent from This Organization'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# The queue mailbox as Exchange knows it: the rules' Bcc targets are compared
# by primary SMTP address, however they were written when the rule was made.
$queue = Get-Recipient -Identity $QueueMailbox
$queueAddress = [string] $queue.PrimarySmtpAddress

$wanted = @(
    [pscustomobject] @{ Name = $InboundRuleName; FromScope = 'NotInOrganization'; SentToScope = 'InOrganization' },
    [pscustomobject] @{ Name = $OutboundRuleName; FromScope = 'InOrganization'; SentToScope = 'NotInOrganization' }
)

# The ways an existing rule differs from the wanted one; none when identical.
function Get-RuleDifference {
    param($Rule, $Want)
    $differences = @()
    if ([string] $Rule.FromScope -ne $Want.FromScope) {
        $differences += "FromScope is '$($Rule.FromScope)', not '$($Want.FromScope)'"
    }
    if ([string] $Rule.SentToScope -ne $Want.SentToScope) {
        $differences += "SentToScope is '$($Rule.SentToScope)', not '$($Want.SentToScope)'"
    }
    $targets = @($Rule.BlindCopyTo | Where-Object { $_ } | ForEach-Object {
        [string] (Get-Recipient -Identity ([string] $_)).PrimarySmtpAddress
    })
    if ($targets.Count -ne 1 -or $targets[0] -ne $queueAddress) {
        $differences += "BlindCopyTo is '$($targets -join ', ')', not '$queueAddress'"
    }
    # No exception (as Business Central makes the rule), or only "unless
    # sent to the queue mailbox" (as this script and the guide make it).
    $excepted = @($Rule.ExceptIfSentTo | Where-Object { $_ } | ForEach-Object {
        [string] (Get-Recipient -Identity ([string] $_)).PrimarySmtpAddress
    })
    $conditions = @($Rule.Conditions | Where-Object { $_ }).Count
    $exceptions = @($Rule.Exceptions | Where-Object { $_ }).Count
    $actions = @($Rule.Actions | Where-Object { $_ }).Count
    $onlyQueueExcepted = ($exceptions -eq 0) -or ($exceptions -eq 1 -and $excepted.Count -eq 1 -and $excepted[0] -eq $queueAddress)
    if ($conditions -ne 2 -or $actions -ne 1 -or -not $onlyQueueExcepted) {
        $differences += "it has $conditions conditions, $exceptions exceptions and $actions actions, not the two scopes, the Bcc, and at most the exception for the queue mailbox"
    }
    if ([string] $Rule.Mode -ne 'Enforce') {
        $differences += "its mode is '$($Rule.Mode)', not 'Enforce'"
    }
    return $differences
}

# First check both, then create: a rule that differs stops the script
# before anything is changed.
$existingRules = @(Get-TransportRule -ResultSize Unlimited)
$toCreate = @()
$problems = @()
foreach ($want in $wanted) {
    $rule = $existingRules | Where-Object { $_.Name -eq $want.Name } | Select-Object -First 1
    if ($null -eq $rule) {
        $toCreate += $want
        continue
    }
    $differences = @(Get-RuleDifference -Rule $rule -Want $want)
    if ($differences.Count -gt 0) {
        $problems += "The rule '$($want.Name)' exists but differs: $($differences -join '; ')."
    } elseif ([string] $rule.State -ne 'Enabled') {
        Write-Warning "The rule '$($want.Name)' is as Mailscribe needs it but is disabled; enable it with Enable-TransportRule."
    } else {
        Write-Output "The rule '$($want.Name)' is already in place; left as it is."
    }
}
if ($problems.Count -gt 0) {
    $message = ($problems -join [Environment]::NewLine) + [Environment]::NewLine +
        'Nothing was changed. Correct the rule (Set-TransportRule), remove it (Remove-TransportRule), ' +
        'or give other names with -InboundRuleName and -OutboundRuleName, then run this script again.'
    throw $message
}

foreach ($want in $toCreate) {
    if ($PSCmdlet.ShouldProcess($want.Name, "Create a mail flow rule that sends a blind copy to $queueAddress")) {
        New-TransportRule -Name $want.Name -FromScope $want.FromScope -SentToScope $want.SentToScope -BlindCopyTo $queueAddress -ExceptIfSentTo $queueAddress -Priority $Priority -Mode Enforce -Enabled $true -Comments 'Copies external mail to the Mailscribe queue mailbox (Set-MailscribeRules.ps1).' | Out-Null
        Write-Output "Created the rule '$($want.Name)'."
    }
}
