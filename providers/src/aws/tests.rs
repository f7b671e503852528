//! Unit tests of the AWS provider.

use std::collections::HashMap;

use super::stage_version;

#[test]
fn the_stamp_is_the_version_holding_the_stage() {
    let versions: HashMap<String, Vec<String>> = HashMap::from([
        ("v-old".to_owned(), vec!["AWSPREVIOUS".to_owned()]),
        ("v-new".to_owned(), vec!["AWSCURRENT".to_owned(), "blue".to_owned()]),
        ("v-next".to_owned(), vec!["AWSPENDING".to_owned()]),
    ]);
    assert_eq!(stage_version(Some(&versions), "AWSCURRENT", false).as_deref(), Some("v-new"));
    assert_eq!(stage_version(Some(&versions), "blue", false).as_deref(), Some("v-new"));
    assert_eq!(stage_version(Some(&versions), "AWSPREVIOUS", false).as_deref(), Some("v-old"));
    assert_eq!(stage_version(Some(&versions), "green", false), None);
    assert_eq!(stage_version(None, "AWSCURRENT", false), None);
    assert_eq!(stage_version(Some(&versions), "AWSCURRENT", true).as_deref(), Some("v-new (scheduled for deletion)"));
}
