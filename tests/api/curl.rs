//! The API driven with curl exactly as GitLab's API documentation shows it.

use std::process::Command;

use regauth::domain::NamespaceKind::Project;
use regauth::domain::Role;
use serde_json::Value;

use crate::helpers::spawn_app;

fn curl(args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), status.to_owned())
}

#[ignore = "needs curl: run by scripts/test.sh"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitlab_documentation_curl_commands_work_unchanged() {
    let app = spawn_app().await;
    app.create_project_with_groups("acme/web").await;
    let token = app.create_user("alice", false, "api").await;
    app.add_member("alice", Project, "acme/web", Role::Maintainer)
        .await;
    let base = format!("{}/api/v4/projects/acme%2Fweb/deploy_tokens", app.address);
    let header = format!("PRIVATE-TOKEN: {token}");

    // curl --request POST --header "PRIVATE-TOKEN: <token>" --data "name=My deploy token&expires_at=2099-01-01&username=custom-user&scopes[]=read_registry" ".../deploy_tokens"
    let (body, status) = tokio::task::block_in_place(|| {
        curl(&[
            "--request", "POST",
            "--header", &header,
            "--data", "name=My deploy token&expires_at=2099-01-01&username=custom-user&scopes[]=read_repository&scopes[]=read_registry",
            &base,
        ])
    });
    assert_eq!(status, "201", "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["name"], "My deploy token");
    assert_eq!(created["username"], "custom-user");
    assert_eq!(
        created["scopes"],
        serde_json::json!(["read_repository", "read_registry"])
    );
    assert!(created["token"].as_str().unwrap().starts_with("gldt-"));

    // curl --header "PRIVATE-TOKEN: <token>" ".../deploy_tokens"
    let (body, status) = tokio::task::block_in_place(|| curl(&["--header", &header, &base]));
    assert_eq!(status, "200");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // curl --request DELETE --header "PRIVATE-TOKEN: <token>" ".../deploy_tokens/:id"
    let url = format!("{base}/{}", created["id"]);
    let (_, status) =
        tokio::task::block_in_place(|| curl(&["--request", "DELETE", "--header", &header, &url]));
    assert_eq!(status, "204");
}
