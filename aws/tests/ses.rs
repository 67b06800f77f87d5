//! The SES mailer against the emulator: the mail port's conformance suite,
//! read back from the emulator's record of what was sent.

mod emulator;

use std::sync::Arc;

use emulator::ses_probe::MotoSesProbe;
use parley_app::mail::{conformance, Mail, MailError, MailProbe, Mailer};
use parley_aws::ses::SesMailer;

/// A mailer with a freshly verified sender of its own, and a probe for its mail.
async fn mailer() -> (Arc<SesMailer>, Arc<MotoSesProbe>) {
    let client = aws_sdk_sesv2::Client::new(&emulator::sdk_config().await);
    let address = format!("{}@parley.test", emulator::unique("no-reply"));
    client.create_email_identity().email_identity(&address).send().await.unwrap();
    let from = format!("Parley <{address}>");
    let mailer = SesMailer::new(client, from.clone());
    (Arc::new(mailer), Arc::new(MotoSesProbe { endpoint: emulator::endpoint(), from }))
}

#[tokio::test]
async fn ses_mailer_conforms() {
    conformance::run_mailer_suite(|| async {
        let (mailer, probe) = mailer().await;
        (mailer as Arc<dyn Mailer>, probe as Arc<dyn MailProbe>)
    })
    .await;
}

#[tokio::test]
async fn an_unverified_sender_is_refused_and_nothing_leaves() {
    let client = aws_sdk_sesv2::Client::new(&emulator::sdk_config().await);
    let from = format!("Parley <{}@parley.test>", emulator::unique("unverified"));
    let mailer = SesMailer::new(client, from.clone());
    let mail = Mail { to: "ana@example.com".into(), subject: "Hi".into(), text: "Hello".into(), html: None };
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Invalid(_)), "{err:?}");
    let probe = MotoSesProbe { endpoint: emulator::endpoint(), from };
    assert!(probe.delivered().await.unwrap().is_empty());
}
