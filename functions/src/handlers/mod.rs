//! Lambda handlers that are not HTTP: each takes the event payload Lambda
//! delivers (aws_lambda_events types) and calls the same application code the
//! local runtime runs in-process.
//!
//! One worker binary hosts all of them; `PARLEY_HANDLER` names the one a
//! function runs (see [`WorkerHandler`]). Sharing a binary keeps the deploy
//! build to one long full-LTO link instead of one per function.

pub mod jobs;
pub mod schedule;
pub mod sender;
pub mod streams;

use std::str::FromStr;

/// The worker functions of `template.yaml`, by their `PARLEY_HANDLER` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerHandler {
    /// DynamoDB stream of the events table -> read models.
    Projector,
    /// DynamoDB stream of the events table -> outbound queue and integration bus.
    Reactor,
    /// Outbound SQS queue -> WhatsApp Cloud API.
    Sender,
    /// Schedule -> `ConversationWindowExpired` for closed windows.
    WindowCloser,
    /// Jobs SQS queue -> exports (and any other job kind).
    JobRunner,
    /// Schedule (1st of the month) -> last month's invoices.
    Invoicer,
    /// Schedule (daily) -> reminders of failed payments.
    Dunning,
    /// Schedule (hourly) -> notices of usage at 80 % and 100 % of the plan.
    UsageNotices,
    /// Schedule (daily) -> an archive run job per tenant (SPEC 6.3).
    Archiver,
    /// Schedule (every few minutes) -> fails queued messages past their time to live.
    MessageCleanup,
    /// Schedule (hourly) -> template statuses asked of WhatsApp.
    TemplatePoller,
}

impl WorkerHandler {
    pub const ALL: [WorkerHandler; 11] = [
        WorkerHandler::Projector,
        WorkerHandler::Reactor,
        WorkerHandler::Sender,
        WorkerHandler::WindowCloser,
        WorkerHandler::JobRunner,
        WorkerHandler::Invoicer,
        WorkerHandler::Dunning,
        WorkerHandler::UsageNotices,
        WorkerHandler::Archiver,
        WorkerHandler::MessageCleanup,
        WorkerHandler::TemplatePoller,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkerHandler::Projector => "projector",
            WorkerHandler::Reactor => "reactor",
            WorkerHandler::Sender => "sender",
            WorkerHandler::WindowCloser => "window-closer",
            WorkerHandler::JobRunner => "job-runner",
            WorkerHandler::Invoicer => "invoicer",
            WorkerHandler::Dunning => "dunning",
            WorkerHandler::UsageNotices => "usage-notices",
            WorkerHandler::Archiver => "archiver",
            WorkerHandler::MessageCleanup => "message-cleanup",
            WorkerHandler::TemplatePoller => "template-poller",
        }
    }

    /// Reads `PARLEY_HANDLER`, with a message naming the valid values.
    pub fn from_env() -> anyhow::Result<Self> {
        let value = std::env::var("PARLEY_HANDLER").unwrap_or_default();
        value.parse()
    }
}

impl FromStr for WorkerHandler {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|h| h.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|h| h.name()).collect();
            anyhow::anyhow!("PARLEY_HANDLER: `{s}` is not one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names_round_trip_and_unknown_ones_are_named_in_the_error() {
        for h in WorkerHandler::ALL {
            assert_eq!(h.name().parse::<WorkerHandler>().unwrap(), h);
        }
        let err = "invoicer-typo".parse::<WorkerHandler>().unwrap_err().to_string();
        assert!(err.contains("invoicer-typo") && err.contains("projector"), "{err}");
    }
}
