//! The operating-system user running this process, for the audit trail of CLI actions.
//! Taken from the process's uid, not `$USER`, which containers and service managers often
//! leave unset (and which anyone can set). Imports nothing from the crate.

/// `cli:<name>` for the process's user (from `/etc/passwd`), or `cli:uid-<n>` when the uid
/// has no entry there (a container running as an arbitrary uid).
pub fn operator_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    match user_name_of(&passwd, uid) {
        Some(name) => format!("cli:{name}"),
        None => format!("cli:uid-{uid}"),
    }
}

/// The name of `uid` in a passwd(5) text (`name:password:uid:gid:…`).
fn user_name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let line_uid: u32 = fields.next()?.parse().ok()?;
        (line_uid == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_passwd_entry_of_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      broken line\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
        assert_eq!(user_name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name_of(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name_of(passwd, 1001), None);
        assert_eq!(user_name_of("", 0), None);
    }
}
