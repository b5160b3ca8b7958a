//! Which `[[sso.groups]]` entry admits a user: the first, in the file's order, whose group the
//! user is in. The order is the operator's precedence — put the platform group first — so a
//! user in two teams' groups gets the one the file names first, never a union (a scope is one
//! tenant). Checked here by its unit tests; called by [`super::Sso::finish`] at sign-in.

use crate::config::GroupMapping;

/// The mapping that admits a member of `groups`, if any.
pub fn admitting<'m>(mappings: &'m [GroupMapping], groups: &[String]) -> Option<&'m GroupMapping> {
    mappings.iter().find(|m| groups.contains(&m.group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(group: &str) -> GroupMapping {
        GroupMapping {
            group: group.into(),
            role: "viewer".into(),
            tenant: None,
            selector: None,
            verbs: None,
            agents: None,
        }
    }

    #[test]
    fn the_first_mapped_group_in_the_files_order_decides() {
        let m = [
            mapping("platform-admins"),
            mapping("team-a"),
            mapping("team-b"),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let found = |g: &[&str]| admitting(&m, &groups(g)).map(|m| m.group.as_str());
        assert_eq!(found(&["team-b", "team-a"]), Some("team-a"));
        assert_eq!(found(&["everyone", "team-b"]), Some("team-b"));
        assert_eq!(
            found(&["team-a", "platform-admins"]),
            Some("platform-admins")
        );
        assert_eq!(
            found(&["marketing", "Team-A", "team-a "]),
            None,
            "exact names only"
        );
        assert_eq!(found(&[]), None);
    }
}
