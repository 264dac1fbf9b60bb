//! Refusing to run in production with secrets anyone can know.
//!
//! The built-in defaults (`config/default.toml`) carry placeholder secrets so that the
//! local stack, the demo and the tests run with no setup. A service started that way in
//! production signs login tokens with a key printed in this repository: anyone could mint
//! an admin token. So outside the explicit development mode (`deployment.mode =
//! "development"`, `SEATQ_DEPLOYMENT__MODE=development`) each service checks, before it
//! does anything else, every secret it uses and refuses to start — with a message naming
//! each setting — if one is empty, a placeholder (a built-in default, or anything saying
//! "change me"), too short, or the same as another of seatq's keys (the payment provider
//! knows the webhook secret: it must not also sign login tokens). The gateway also refuses
//! the development conveniences that hand out power: dev tokens (any token for anyone)
//! and the sandbox payment provider (payments nobody paid).
//!
//! The consumer and `seatq-ctl` use no secret, so they have nothing to check.

use crate::config::{DeploymentMode, Settings};

/// A secret setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// Signs login tokens (HS256).
    JwtSecret,
    /// Signs the payment provider's webhooks.
    WebhookSecret,
    /// Signs ticket codes.
    TicketCodeSecret,
    /// Signs admission tokens, challenges and the lottery.
    WaitingRoomSecret,
    /// seatq's key at the payment provider (issued by the provider).
    ProviderApiKey,
}

impl Secret {
    pub const ALL: [Secret; 5] = [
        Secret::JwtSecret,
        Secret::WebhookSecret,
        Secret::TicketCodeSecret,
        Secret::WaitingRoomSecret,
        Secret::ProviderApiKey,
    ];

    /// The setting's name, `section.key`.
    pub fn key(self) -> &'static str {
        match self {
            Secret::JwtSecret => "auth.jwt_secret",
            Secret::WebhookSecret => "payments.webhook_secret",
            Secret::TicketCodeSecret => "tickets.code_secret",
            Secret::WaitingRoomSecret => "waiting_room.secret",
            Secret::ProviderApiKey => "payments.provider_api_key",
        }
    }

    /// The environment variable that sets it.
    pub fn env_var(self) -> String {
        format!(
            "SEATQ_{}",
            self.key().replace('.', "__").to_ascii_uppercase()
        )
    }

    pub fn value(self, settings: &Settings) -> &str {
        match self {
            Secret::JwtSecret => &settings.auth.jwt_secret,
            Secret::WebhookSecret => &settings.payments.webhook_secret,
            Secret::TicketCodeSecret => &settings.tickets.code_secret,
            Secret::WaitingRoomSecret => &settings.waiting_room.secret,
            Secret::ProviderApiKey => &settings.payments.provider_api_key,
        }
    }

    /// Bytes it must have at least. seatq's own keys are HMAC-SHA256 keys: 256 bits, as
    /// RFC 7518 asks of HS256. The provider's key is whatever the provider issued.
    pub fn min_len(self) -> usize {
        match self {
            Secret::ProviderApiKey => 16,
            _ => 32,
        }
    }

    /// Chosen by seatq's operators (not by the provider): must differ from each other.
    fn seatq_key(self) -> bool {
        self != Secret::ProviderApiKey
    }
}

/// A service that checks its settings at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    Notifier,
    Scheduler,
}

impl Service {
    /// The secrets it uses.
    pub fn secrets(self) -> &'static [Secret] {
        match self {
            Service::Gateway => &Secret::ALL,
            Service::Notifier => &[Secret::JwtSecret],
            Service::Scheduler => &[Secret::ProviderApiKey],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Gateway => "seatq-gateway",
            Service::Notifier => "seatq-notifier",
            Service::Scheduler => "seatq-scheduler",
        }
    }
}

/// Why a service will not start (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureSettings {
    pub service: &'static str,
    /// One line per setting at fault, naming it.
    pub problems: Vec<String>,
}

impl std::fmt::Display for InsecureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} refuses to start: deployment.mode is \"production\" and",
            self.service
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(
            f,
            "Set each secret to a random value of its own (e.g. `openssl rand -base64 48`) \
             through its SEATQ_* variable, or, on a developer machine only, set \
             deployment.mode = \"development\" (SEATQ_DEPLOYMENT__MODE=development)."
        )
    }
}

impl std::error::Error for InsecureSettings {}

/// Check `service`'s settings (nothing in development mode).
pub fn check(settings: &Settings, service: Service) -> Result<(), InsecureSettings> {
    if settings.deployment.mode == DeploymentMode::Development {
        return Ok(());
    }
    let problems = problems(settings, service);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InsecureSettings {
            service: service.name(),
            problems,
        })
    }
}

/// What is wrong with `service`'s settings for production, one line per setting.
pub fn problems(settings: &Settings, service: Service) -> Vec<String> {
    let defaults = Settings::defaults().ok();
    let mut problems = Vec::new();
    for &secret in service.secrets() {
        let value = secret.value(settings);
        let name = format!("{} ({})", secret.key(), secret.env_var());
        let placeholder = defaults
            .as_ref()
            .is_some_and(|d| Secret::ALL.iter().any(|s| s.value(d) == value))
            || looks_like_placeholder(value);
        if value.trim().is_empty() {
            problems.push(format!("{name} is empty"));
        } else if placeholder {
            problems.push(format!("{name} is a placeholder"));
        } else if value.len() < secret.min_len() {
            problems.push(format!(
                "{name} is too short: {} bytes, at least {}",
                value.len(),
                secret.min_len()
            ));
        }
    }
    // Two of seatq's keys with one value: whoever knows one (the provider knows the
    // webhook secret) knows the other.
    let own: Vec<Secret> = service
        .secrets()
        .iter()
        .copied()
        .filter(|s| s.seatq_key())
        .collect();
    for (i, a) in own.iter().enumerate() {
        for b in &own[i + 1..] {
            let value = a.value(settings);
            if !value.trim().is_empty() && value == b.value(settings) {
                problems.push(format!("{} and {} are the same secret", a.key(), b.key()));
            }
        }
    }
    if service == Service::Gateway {
        if settings.auth.dev_tokens {
            problems.push(
                "auth.dev_tokens (SEATQ_AUTH__DEV_TOKENS) is on: anyone could get an admin token"
                    .into(),
            );
        }
        if settings.payments.sandbox_enabled {
            problems.push(
                "payments.sandbox_enabled (SEATQ_PAYMENTS__SANDBOX_ENABLED) is on: bookings without payment"
                    .into(),
            );
        }
    }
    problems
}

/// The placeholders of the deploy files and their like ("CHANGE-ME", "changeme", …).
fn looks_like_placeholder(value: &str) -> bool {
    let folded: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    ["changeme", "replaceme", "placeholder"]
        .iter()
        .any(|p| folded.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Production settings with real-looking secrets, each distinct.
    fn production() -> Settings {
        let mut s = Settings::defaults().expect("defaults");
        s.deployment.mode = DeploymentMode::Production;
        s.auth.jwt_secret = "Jq3v0tq7mUuVb4m7Fq9Xw0cZ2nR8kL1yH5sD6aG3pE4=".into();
        s.payments.webhook_secret = "whsec_5tWm8Qe2Rr9Yb1Nc4Vx7Kz0Lp3Hj6Gf2Ds9Aa1".into();
        s.tickets.code_secret = "Tc8Zq2Wn5Ve1Rb7Ym4Xk0Lp9Hj3Gf6Ds2Aa8Qe5Rr1=".into();
        s.waiting_room.secret = "Wr4Yb7Nc1Vx0Kz3Lp6Hj9Gf2Ds5Aa8Qe1Rr4Tc7Zq0=".into();
        s.payments.provider_api_key = "sk_live_51HbZq2Wn5Ve1Rb7Ym4Xk0".into();
        s.auth.dev_tokens = false;
        s.payments.sandbox_enabled = false;
        s
    }

    #[test]
    fn real_secrets_pass() {
        for service in [Service::Gateway, Service::Notifier, Service::Scheduler] {
            assert_eq!(check(&production(), service), Ok(()), "{service:?}");
        }
    }

    #[test]
    fn the_built_in_defaults_fail_in_production_and_pass_in_development() {
        let mut s = Settings::defaults().expect("defaults");
        assert_eq!(
            s.deployment.mode,
            DeploymentMode::Production,
            "production unless asked otherwise"
        );
        let err = check(&s, Service::Gateway).expect_err("placeholders");
        for secret in Secret::ALL {
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.starts_with(secret.key()) && p.ends_with("is a placeholder")),
                "{secret:?}: {err}"
            );
        }
        let text = err.to_string();
        assert!(text.contains("auth.jwt_secret (SEATQ_AUTH__JWT_SECRET) is a placeholder"));
        assert!(
            text.contains("SEATQ_DEPLOYMENT__MODE=development"),
            "{text}"
        );
        assert_eq!(
            check(&s, Service::Notifier).expect_err("jwt").problems,
            vec!["auth.jwt_secret (SEATQ_AUTH__JWT_SECRET) is a placeholder".to_owned()]
        );
        s.deployment.mode = DeploymentMode::Development;
        assert_eq!(check(&s, Service::Gateway), Ok(()));
    }

    #[test]
    fn empty_short_placeholder_and_shared_secrets_are_named() {
        type Case = (&'static str, fn(&mut Settings), &'static str);
        let cases: Vec<Case> = vec![
            (
                "empty",
                |s| s.auth.jwt_secret = String::new(),
                "auth.jwt_secret (SEATQ_AUTH__JWT_SECRET) is empty",
            ),
            (
                "blank",
                |s| s.tickets.code_secret = "   ".into(),
                "tickets.code_secret (SEATQ_TICKETS__CODE_SECRET) is empty",
            ),
            (
                "deploy placeholder",
                |s| s.waiting_room.secret = "CHANGE-ME".into(),
                "waiting_room.secret (SEATQ_WAITING_ROOM__SECRET) is a placeholder",
            ),
            (
                "another secret's default",
                |s| s.auth.jwt_secret = "change-me-in-production-ticket-secret".into(),
                "auth.jwt_secret (SEATQ_AUTH__JWT_SECRET) is a placeholder",
            ),
            (
                "sandbox key",
                |s| s.payments.provider_api_key = "sandbox-api-key".into(),
                "payments.provider_api_key (SEATQ_PAYMENTS__PROVIDER_API_KEY) is a placeholder",
            ),
            (
                "short",
                |s| s.payments.webhook_secret = "s3cr3t-but-short".into(),
                "payments.webhook_secret (SEATQ_PAYMENTS__WEBHOOK_SECRET) is too short: 16 bytes, at least 32",
            ),
            (
                "shared",
                |s| s.payments.webhook_secret = s.auth.jwt_secret.clone(),
                "auth.jwt_secret and payments.webhook_secret are the same secret",
            ),
            (
                "dev tokens",
                |s| s.auth.dev_tokens = true,
                "auth.dev_tokens (SEATQ_AUTH__DEV_TOKENS) is on: anyone could get an admin token",
            ),
            (
                "sandbox",
                |s| s.payments.sandbox_enabled = true,
                "payments.sandbox_enabled (SEATQ_PAYMENTS__SANDBOX_ENABLED) is on: bookings without payment",
            ),
        ];
        for (what, break_it, want) in cases {
            let mut s = production();
            break_it(&mut s);
            let err = check(&s, Service::Gateway).expect_err(what);
            assert_eq!(err.problems, vec![want.to_owned()], "{what}");
        }
        // The scheduler does not serve dev tokens and never sees the login secret.
        let mut s = production();
        s.auth.dev_tokens = true;
        s.auth.jwt_secret = String::new();
        assert_eq!(check(&s, Service::Scheduler), Ok(()));
    }
}
