//! Tenants and their members (SPEC 3.1): who belongs to a business and with
//! which role. A tenant is created with its owner at sign-up; owners and
//! admins invite people by email, change roles and remove members.
//!
//! Rules kept here: a tenant always has at least one owner; only an owner
//! grants, changes or removes the owner role; agents and viewers manage no one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;

/// A member's role in a tenant. Order matters: each role can do everything
/// the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Agent,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(format!("`{other}` is not one of owner, admin, agent, viewer")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub role: Role,
    pub invited_by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tenant {
    pub name: Option<String>,
    /// Members by user id.
    pub members: BTreeMap<String, Member>,
    /// Open invitations by (lower-case) email.
    pub invitations: BTreeMap<String, Invitation>,
    /// Days records stay hot before archiving; `None`: the default.
    pub retention_days: Option<u32>,
}

impl Tenant {
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::TenantCreated { name, .. } => self.name = Some(name.clone()),
            Event::MemberInvited { email, role, invited_by, at } => {
                self.invitations
                    .insert(email.clone(), Invitation { role: *role, invited_by: invited_by.clone(), at: *at });
            }
            Event::MemberJoined { user_id, email, role, at } => {
                self.invitations.remove(email);
                self.members.insert(user_id.clone(), Member { email: email.clone(), role: *role, joined_at: *at });
            }
            Event::RoleChanged { user_id, to, .. } => {
                if let Some(m) = self.members.get_mut(user_id) {
                    m.role = *to;
                }
            }
            Event::MemberRemoved { user_id, .. } => {
                self.members.remove(user_id);
            }
            Event::InvitationRevoked { email, .. } => {
                self.invitations.remove(email);
            }
            Event::RetentionChanged { days, .. } => self.retention_days = Some(*days),
            _ => {}
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Tenant::default(), Tenant::evolve)
    }

    pub fn exists(&self) -> bool {
        self.name.is_some()
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|m| m.role == Role::Owner).count()
    }

    fn member_by_email(&self, email: &str) -> Option<&Member> {
        self.members.values().find(|m| m.email == email)
    }
}

/// Why a membership decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: &'static str },
    #[error("the tenant exists already")]
    TenantExists,
    #[error("no such tenant")]
    UnknownTenant,
    #[error("no such member")]
    UnknownMember,
    #[error("no open invitation for this email")]
    NoInvitation,
    #[error("this email belongs to a member already")]
    AlreadyMember,
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("a tenant keeps at least one owner")]
    LastOwner,
}

/// Lower-cases and checks an email address (one `@`, a dot in the domain, no spaces, at most 254 characters).
pub fn normalize_email(email: &str) -> Result<String, MembershipError> {
    let email = email.trim().to_lowercase();
    let invalid = MembershipError::Invalid { field: "email", message: "must be an email address" };
    let (local, domain) = email.split_once('@').ok_or(invalid.clone())?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(invalid)
    }
}

/// Creates a tenant with its first owner (sign-up).
pub fn create(
    state: &Tenant,
    tenant_id: &str,
    name: &str,
    owner_user_id: &str,
    owner_email: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, MembershipError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        return Err(MembershipError::Invalid {
            field: "tenant_name",
            message: "must be 1 to 120 printable characters",
        });
    }
    if state.exists() {
        return Err(MembershipError::TenantExists);
    }
    Ok(vec![
        Event::TenantCreated { tenant_id: tenant_id.to_owned(), name: name.to_owned(), at: now },
        Event::MemberJoined {
            user_id: owner_user_id.to_owned(),
            email: owner_email.to_owned(),
            role: Role::Owner,
            at: now,
        },
    ])
}

/// An owner or admin invites someone by email. Only owners invite owners.
pub fn invite(
    state: &Tenant,
    actor: (&str, Role),
    email: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, MembershipError> {
    let (actor_id, actor_role) = actor;
    if !state.exists() {
        return Err(MembershipError::UnknownTenant);
    }
    may_manage(actor_role, role)?;
    if state.member_by_email(email).is_some() {
        return Err(MembershipError::AlreadyMember);
    }
    Ok(vec![Event::MemberInvited { email: email.to_owned(), role, invited_by: actor_id.to_owned(), at: now }])
}

/// The invited person accepted (their code was checked by the identity provider).
pub fn join(state: &Tenant, user_id: &str, email: &str, now: DateTime<Utc>) -> Result<Vec<Event>, MembershipError> {
    let invitation = state.invitations.get(email).ok_or(MembershipError::NoInvitation)?;
    if state.members.contains_key(user_id) {
        return Err(MembershipError::AlreadyMember);
    }
    Ok(vec![Event::MemberJoined {
        user_id: user_id.to_owned(),
        email: email.to_owned(),
        role: invitation.role,
        at: now,
    }])
}

/// Changes a member's role. Nothing happens when the role is the same.
pub fn change_role(
    state: &Tenant,
    actor: (&str, Role),
    user_id: &str,
    to: Role,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, MembershipError> {
    let (actor_id, actor_role) = actor;
    let member = state.members.get(user_id).ok_or(MembershipError::UnknownMember)?;
    may_manage(actor_role, member.role)?;
    may_manage(actor_role, to)?;
    if member.role == to {
        return Ok(vec![]);
    }
    if member.role == Role::Owner && state.owners() == 1 {
        return Err(MembershipError::LastOwner);
    }
    Ok(vec![Event::RoleChanged {
        user_id: user_id.to_owned(),
        from: member.role,
        to,
        by: actor_id.to_owned(),
        at: now,
    }])
}

/// Removes a member.
pub fn remove(
    state: &Tenant,
    actor: (&str, Role),
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, MembershipError> {
    let (actor_id, actor_role) = actor;
    let member = state.members.get(user_id).ok_or(MembershipError::UnknownMember)?;
    may_manage(actor_role, member.role)?;
    if member.role == Role::Owner && state.owners() == 1 {
        return Err(MembershipError::LastOwner);
    }
    Ok(vec![Event::MemberRemoved { user_id: user_id.to_owned(), by: actor_id.to_owned(), at: now }])
}

/// Whether `actor` may grant, hold over or take away `target`.
fn may_manage(actor: Role, target: Role) -> Result<(), MembershipError> {
    match actor {
        Role::Owner => Ok(()),
        Role::Admin if target != Role::Owner => Ok(()),
        Role::Admin => Err(MembershipError::NotAllowed("only an owner manages owners")),
        Role::Agent | Role::Viewer => Err(MembershipError::NotAllowed("only owners and admins manage members")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn tenant() -> Tenant {
        Tenant::fold(&create(&Tenant::default(), "acme", "Acme", "u-owner", "o@acme.test", t0()).unwrap())
    }

    #[test]
    fn signup_creates_the_tenant_with_its_owner_once() {
        let t = tenant();
        assert_eq!(t.members["u-owner"].role, Role::Owner);
        assert_eq!(create(&t, "acme", "Acme", "u2", "x@acme.test", t0()), Err(MembershipError::TenantExists));
        assert!(create(&Tenant::default(), "acme", "  ", "u", "x@y.test", t0()).is_err());
    }

    #[test]
    fn invitations_join_with_the_invited_role() {
        let mut t = tenant();
        let events = invite(&t, ("u-owner", Role::Owner), "a@acme.test", Role::Agent, t0()).unwrap();
        t = events.iter().fold(t, Tenant::evolve);
        assert_eq!(join(&t, "u-a", "b@acme.test", t0()), Err(MembershipError::NoInvitation));
        t = join(&t, "u-a", "a@acme.test", t0()).unwrap().iter().fold(t, Tenant::evolve);
        assert_eq!(t.members["u-a"].role, Role::Agent);
        assert!(t.invitations.is_empty());
        assert_eq!(
            invite(&t, ("u-owner", Role::Owner), "a@acme.test", Role::Viewer, t0()),
            Err(MembershipError::AlreadyMember)
        );
    }

    #[test]
    fn only_owners_manage_owners_and_agents_manage_no_one() {
        let t = tenant();
        assert!(matches!(
            invite(&t, ("u-ad", Role::Admin), "x@acme.test", Role::Owner, t0()),
            Err(MembershipError::NotAllowed(_))
        ));
        assert!(invite(&t, ("u-ad", Role::Admin), "x@acme.test", Role::Admin, t0()).is_ok());
        assert!(matches!(
            invite(&t, ("u-ag", Role::Agent), "x@acme.test", Role::Viewer, t0()),
            Err(MembershipError::NotAllowed(_))
        ));
        assert!(matches!(remove(&t, ("u-ad", Role::Admin), "u-owner", t0()), Err(MembershipError::NotAllowed(_))));
    }

    #[test]
    fn the_last_owner_stays() {
        let t = tenant();
        assert_eq!(
            change_role(&t, ("u-owner", Role::Owner), "u-owner", Role::Admin, t0()),
            Err(MembershipError::LastOwner)
        );
        assert_eq!(remove(&t, ("u-owner", Role::Owner), "u-owner", t0()), Err(MembershipError::LastOwner));
        assert_eq!(change_role(&t, ("u-owner", Role::Owner), "u-owner", Role::Owner, t0()), Ok(vec![]));
        assert_eq!(remove(&t, ("u-owner", Role::Owner), "nobody", t0()), Err(MembershipError::UnknownMember));
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.com", "ann@localhost", "a b@x.com", "a@b@c.com", "a@x\n.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}

/// The shortest and longest retention a tenant may choose, in days.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// Why a retention change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("no such tenant")]
    UnknownTenant,
    #[error("retention must be 1 to 3650 days, not {0}")]
    OutOfRange(u32),
}

/// Sets how many days the tenant's records stay hot; the same value again records nothing.
pub fn set_retention(state: &Tenant, days: u32, by: &str, now: DateTime<Utc>) -> Result<Vec<Event>, RetentionError> {
    if !state.exists() {
        return Err(RetentionError::UnknownTenant);
    }
    if !RETENTION_DAYS.contains(&days) {
        return Err(RetentionError::OutOfRange(days));
    }
    if state.retention_days == Some(days) {
        return Ok(vec![]);
    }
    Ok(vec![Event::RetentionChanged { days, by: by.to_owned(), at: now }])
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn retention_is_bounded_and_recorded_once() {
        let now = Utc::now();
        let created = Event::TenantCreated { tenant_id: "t1".into(), name: "Acme".into(), at: now };
        let tenant = Tenant::fold([&created]);
        assert_eq!(set_retention(&Tenant::default(), 30, "u", now), Err(RetentionError::UnknownTenant));
        assert_eq!(set_retention(&tenant, 0, "u", now), Err(RetentionError::OutOfRange(0)));
        assert_eq!(set_retention(&tenant, 4000, "u", now), Err(RetentionError::OutOfRange(4000)));
        let events = set_retention(&tenant, 30, "u", now).unwrap();
        let tenant = events.iter().fold(tenant, |t, e| t.evolve(e));
        assert_eq!(tenant.retention_days, Some(30));
        assert!(set_retention(&tenant, 30, "u", now).unwrap().is_empty());
    }
}
