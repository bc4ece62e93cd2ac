//! Token roles and what each may do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a token may do inside its workspace. Ordered: each role can do
/// everything the roles before it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything in the workspace.
    Reader,
    /// Reads, and creates or changes experiments, runs and their data.
    Contributor,
    /// Everything, including managing the workspace's tokens.
    Admin,
}

impl Role {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or submitted role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "contributor" => Some(Role::Contributor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a holder of `self` may act where `needed` is required.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.allows(Role::Contributor));
        assert!(Role::Contributor.allows(Role::Reader));
        assert!(!Role::Reader.allows(Role::Contributor));
        assert!(!Role::Contributor.allows(Role::Admin));
    }

    #[test]
    fn names_round_trip() {
        for role in [Role::Reader, Role::Contributor, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
    }
}
