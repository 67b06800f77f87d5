//! The identity use cases (SPEC 5.1, 3.1): sign-up creates a tenant and its
//! owner, sign-in is throttled, members are invited, re-roled and removed.
//! The identity provider holds credentials; what happened is recorded as
//! domain events on the tenant's and the user's streams.

use std::time::Instant;

use parley_domain::tenant::{self, MembershipError, Tenant};
use parley_domain::user::{self, PasswordChange, RevokeReason, User};
use parley_domain::Event;

use super::{Account, IdentityError, Invite, NewUser, Tokens};
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::repo::Target;
use crate::sealing::Meta;

/// The stream of a tenant's membership events.
pub fn tenant_stream(tenant_id: &str) -> String {
    format!("tenant-{tenant_id}")
}

/// Who signed up: the new tenant and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUp {
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
}

/// The caller's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub account: Account,
    pub tenant_name: String,
    /// The role in force now (the token's may be older).
    pub role: Role,
}

/// A member as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    pub user_id: Option<String>,
    pub email: String,
    pub role: Role,
    /// `active`, or `invited` until the invitation is accepted.
    pub status: &'static str,
    pub since: chrono::DateTime<chrono::Utc>,
}

impl From<MembershipError> for AppError {
    fn from(e: MembershipError) -> Self {
        match e {
            MembershipError::Invalid { field, message } => AppError::validation(field, message),
            MembershipError::UnknownTenant | MembershipError::UnknownMember => AppError::NotFound { what: "member" },
            MembershipError::NoInvitation => AppError::Identity(IdentityError::InvalidCode),
            MembershipError::AlreadyMember => {
                AppError::Conflict { code: "already_member", detail: "this email belongs to a member already".into() }
            }
            MembershipError::TenantExists => {
                AppError::Conflict { code: "tenant_exists", detail: "the tenant exists already".into() }
            }
            MembershipError::NotAllowed(why) => AppError::Forbidden(why.into()),
            MembershipError::LastOwner => {
                AppError::Conflict { code: "last_owner", detail: "a tenant keeps at least one owner".into() }
            }
        }
    }
}

fn email(e: &str) -> Result<String, AppError> {
    tenant::normalize_email(e).map_err(AppError::from)
}

impl App {
    /// Creates a tenant named `tenant_name` with its owner and mails the verification code.
    pub async fn sign_up(&self, email_in: &str, password: &str, tenant_name: &str) -> Result<SignedUp, AppError> {
        let email = email(email_in)?;
        let tenant_id = format!("t{}", uuid::Uuid::now_v7().simple());
        // Check the tenant name before any account exists.
        tenant::create(&Tenant::default(), &tenant_id, tenant_name, "-", &email, self.clock.now())?;
        let account = self
            .identity
            .sign_up(NewUser { email, password: password.to_owned(), tenant_id: tenant_id.clone(), role: Role::Owner })
            .await?;
        let now = self.clock.now();
        let meta = Meta::new(format!("user:{}", account.user_id));
        let target = Target { tenant_id: &tenant_id, stream_id: tenant_stream(&tenant_id), wa_id: None };
        self.tenants
            .execute(&target, &meta, |t| {
                tenant::create(t, &tenant_id, tenant_name, &account.user_id, &account.email, now)
            })
            .await?;
        let signed_up = Event::UserSignedUp {
            user_id: account.user_id.clone(),
            tenant_id: tenant_id.clone(),
            email: account.email.clone(),
            at: now,
        };
        self.record(&account, &meta, signed_up).await?;
        Ok(SignedUp { user_id: account.user_id, tenant_id, email: account.email })
    }

    /// Appends an account event to the user's stream.
    async fn record(&self, account: &Account, meta: &Meta, event: Event) -> Result<(), AppError> {
        let target =
            Target { tenant_id: &account.tenant_id, stream_id: user::stream_id(&account.user_id), wa_id: None };
        self.users
            .execute(&target, meta, |u: &User| Ok::<_, AppError>(user::record(u, event.clone())))
            .await
            .map_err(AppError::from)?;
        Ok(())
    }

    async fn record_for(&self, user_id: &str, meta: &Meta, event: Event) -> Result<(), AppError> {
        if let Some(account) = self.identity.account(user_id).await? {
            self.record(&account, meta, event).await?;
        }
        Ok(())
    }

    pub async fn verify_email(&self, email: &str, code: &str) -> Result<(), AppError> {
        let account = self.identity.verify_email(email, code).await?;
        let meta = Meta::new(format!("user:{}", account.user_id));
        self.record(&account, &meta, Event::EmailVerified { email: account.email.clone(), at: self.clock.now() }).await
    }

    /// Password sign-in, throttled per account and per client address.
    pub async fn log_in(&self, email_in: &str, password: &str, client: &str) -> Result<Tokens, AppError> {
        let account_key = format!("account:{}", email_in.trim().to_lowercase());
        let client_key = format!("client:{client}");
        let now = Instant::now();
        for (throttle, key) in [(&self.throttles.per_account, &account_key), (&self.throttles.per_client, &client_key)]
        {
            throttle.check(key, now).map_err(|s| IdentityError::Throttled { retry_after_secs: s })?;
        }
        match self.identity.login(email_in, password).await {
            Err(IdentityError::InvalidCredentials) => {
                self.throttles.per_account.fail(&account_key, now);
                self.throttles.per_client.fail(&client_key, now);
                Err(IdentityError::InvalidCredentials.into())
            }
            Ok(tokens) => {
                self.throttles.per_account.succeed(&account_key);
                Ok(tokens)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn refresh_session(&self, refresh_token: &str) -> Result<Tokens, AppError> {
        match self.identity.refresh(refresh_token).await {
            Err(IdentityError::RefreshReused { user_id }) => {
                let meta = Meta::new("system:identity");
                let event = Event::SessionRevoked { reason: RevokeReason::RefreshReuse, at: self.clock.now() };
                self.record_for(&user_id, &meta, event).await?;
                Err(IdentityError::RefreshReused { user_id }.into())
            }
            other => Ok(other?),
        }
    }

    pub async fn log_out(&self, refresh_token: &str) -> Result<(), AppError> {
        let user_id = self.identity.logout(refresh_token).await?;
        let meta = Meta::new(format!("user:{user_id}"));
        self.record_for(&user_id, &meta, Event::SessionRevoked { reason: RevokeReason::Logout, at: self.clock.now() })
            .await
    }

    pub async fn forgot_password(&self, email_in: &str) -> Result<(), AppError> {
        Ok(self.identity.forgot_password(&email(email_in)?).await?)
    }

    pub async fn reset_password(&self, email_in: &str, code: &str, password: &str) -> Result<(), AppError> {
        let account = self.identity.reset_password(&email(email_in)?, code, password).await?;
        let meta = Meta::new(format!("user:{}", account.user_id));
        let now = self.clock.now();
        self.record(&account, &meta, Event::PasswordChanged { reason: PasswordChange::Reset, at: now }).await?;
        self.record(&account, &meta, Event::SessionRevoked { reason: RevokeReason::PasswordChanged, at: now }).await
    }

    pub async fn change_password(&self, caller: &Caller, token: &str, old: &str, new: &str) -> Result<(), AppError> {
        let account = self.identity.change_password(token, old, new).await?;
        let now = self.clock.now();
        let meta = Meta::new(caller.actor());
        self.record(&account, &meta, Event::PasswordChanged { reason: PasswordChange::Changed, at: now }).await?;
        self.record(&account, &meta, Event::SessionRevoked { reason: RevokeReason::PasswordChanged, at: now }).await
    }

    /// Without a code: mails one to `new_email`. With the code: makes the change.
    pub async fn change_email(
        &self,
        caller: &Caller,
        token: &str,
        new_email: &str,
        code: Option<&str>,
    ) -> Result<Option<Account>, AppError> {
        let new_email = email(new_email)?;
        match code {
            None => {
                self.identity.change_email(token, &new_email).await?;
                Ok(None)
            }
            Some(code) => {
                let account = self.identity.confirm_email_change(token, code).await?;
                if account.email != new_email {
                    return Err(AppError::validation("new_email", "is not the address the code was sent to"));
                }
                let event = Event::EmailVerified { email: account.email.clone(), at: self.clock.now() };
                self.record(&account, &Meta::new(caller.actor()), event).await?;
                Ok(Some(account))
            }
        }
    }

    pub async fn me(&self, caller: &Caller) -> Result<Me, AppError> {
        let account = self.identity.account(&caller.user_id).await?.ok_or(AppError::NotFound { what: "user" })?;
        let tenant = self.tenants.load(&tenant_stream(&caller.tenant_id)).await?;
        let member = tenant.state.members.get(&caller.user_id);
        match (account.tenant_id == caller.tenant_id, member) {
            (true, Some(m)) => {
                Ok(Me { role: m.role, tenant_name: tenant.state.name.clone().unwrap_or_default(), account })
            }
            _ => Err(AppError::NotFound { what: "user" }),
        }
    }

    /// The tenant's members and open invitations.
    pub async fn members(&self, caller: &Caller) -> Result<Vec<MemberEntry>, AppError> {
        let tenant = self.tenants.load(&tenant_stream(&caller.tenant_id)).await?.state;
        let mut out: Vec<MemberEntry> = tenant
            .members
            .iter()
            .map(|(id, m)| MemberEntry {
                user_id: Some(id.clone()),
                email: m.email.clone(),
                role: m.role,
                status: "active",
                since: m.joined_at,
            })
            .collect();
        out.extend(tenant.invitations.iter().map(|(email, i)| MemberEntry {
            user_id: None,
            email: email.clone(),
            role: i.role,
            status: "invited",
            since: i.at,
        }));
        Ok(out)
    }

    /// Invites `email` as `role`; the identity provider mails the code.
    pub async fn invite_member(&self, caller: &Caller, email_in: &str, role: Role) -> Result<(), AppError> {
        caller.require(Role::Admin)?;
        let email = email(email_in)?;
        let stream = tenant_stream(&caller.tenant_id);
        let tenant = self.tenants.load(&stream).await?.state;
        let now = self.clock.now();
        let actor = (caller.user_id.as_str(), caller.role);
        // Decide first, so a refused invitation mails nothing.
        tenant::invite(&tenant, actor, &email, role, now)?;
        let inviter = self.identity.account(&caller.user_id).await?.map(|a| a.email).unwrap_or_default();
        self.identity
            .invite(Invite {
                email: email.clone(),
                tenant_id: caller.tenant_id.clone(),
                role,
                tenant_name: tenant.name.clone().unwrap_or_default(),
                invited_by: inviter,
            })
            .await
            .map_err(|e| match e {
                IdentityError::EmailTaken => AppError::Conflict {
                    code: "email_taken",
                    detail: "this email has an account already; it cannot be invited".into(),
                },
                e => e.into(),
            })?;
        let target = Target { tenant_id: &caller.tenant_id, stream_id: stream, wa_id: None };
        self.tenants
            .execute(&target, &Meta::new(caller.actor()), |t| tenant::invite(t, actor, &email, role, now))
            .await?;
        Ok(())
    }

    /// The invitee joins with the mailed code and a password of their own.
    pub async fn accept_invitation(&self, email_in: &str, code: &str, password: &str) -> Result<Account, AppError> {
        let account = self.identity.accept_invitation(&email(email_in)?, code, password).await?;
        let now = self.clock.now();
        let meta = Meta::new(format!("user:{}", account.user_id));
        let target =
            Target { tenant_id: &account.tenant_id, stream_id: tenant_stream(&account.tenant_id), wa_id: None };
        self.tenants.execute(&target, &meta, |t| tenant::join(t, &account.user_id, &account.email, now)).await?;
        let signed_up = Event::UserSignedUp {
            user_id: account.user_id.clone(),
            tenant_id: account.tenant_id.clone(),
            email: account.email.clone(),
            at: now,
        };
        self.record(&account, &meta, signed_up).await?;
        self.record(&account, &meta, Event::EmailVerified { email: account.email.clone(), at: now }).await?;
        self.record(&account, &meta, Event::PasswordChanged { reason: PasswordChange::Initial, at: now }).await?;
        Ok(account)
    }

    pub async fn change_member_role(&self, caller: &Caller, user_id: &str, role: Role) -> Result<(), AppError> {
        caller.require(Role::Admin)?;
        let target = Target { tenant_id: &caller.tenant_id, stream_id: tenant_stream(&caller.tenant_id), wa_id: None };
        let actor = (caller.user_id.as_str(), caller.role);
        let now = self.clock.now();
        let done = self
            .tenants
            .execute(&target, &Meta::new(caller.actor()), |t| tenant::change_role(t, actor, user_id, role, now))
            .await?;
        if !done.events.is_empty() {
            self.identity.set_role(user_id, role).await?;
        }
        Ok(())
    }

    pub async fn remove_member(&self, caller: &Caller, user_id: &str) -> Result<(), AppError> {
        caller.require(Role::Admin)?;
        let target = Target { tenant_id: &caller.tenant_id, stream_id: tenant_stream(&caller.tenant_id), wa_id: None };
        let actor = (caller.user_id.as_str(), caller.role);
        let now = self.clock.now();
        let meta = Meta::new(caller.actor());
        self.tenants.execute(&target, &meta, |t| tenant::remove(t, actor, user_id, now)).await?;
        if let Some(account) = self.identity.account(user_id).await? {
            self.record(&account, &meta, Event::SessionRevoked { reason: RevokeReason::MemberRemoved, at: now })
                .await?;
        }
        self.identity.delete_user(user_id).await?;
        Ok(())
    }
}
