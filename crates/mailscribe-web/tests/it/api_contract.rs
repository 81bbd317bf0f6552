//! The API keeps its published contract (issue 10, item 10): a missing
//! credential is a 401 with `WWW-Authenticate: Bearer`, and every
//! rejection (path, query, body, method) has the JSON error shape.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use mailscribe_core::Role;
use mailscribe_web::hash_token;

use crate::{App, Reply, json};

fn assert_json_error(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    let content_type = reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type}"
    );
    let body = json(reply);
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

async fn app_with_token() -> (App, Vec<i64>) {
    let app = App::new().await;
    let numbers = app.seed_entries().await;
    app.add_user("root", Role::Admin, None).await;
    let (user, _) = app.store.user_by_name("root").await.unwrap().unwrap();
    app.store
        .create_api_token(&hash_token("root-token"), user.id, Utc::now(), None)
        .await
        .unwrap();
    (app, numbers)
}

#[tokio::test]
async fn a_missing_or_wrong_credential_is_401_with_www_authenticate() {
    let (app, numbers) = app_with_token().await;
    let write = format!("/api/v1/interactions/{}/cancel", numbers[0]);
    for (what, reply) in [
        (
            "read without a credential",
            app.send("GET", "/api/v1/me", &[], None, None).await,
        ),
        (
            "write without a credential",
            app.send("POST", &write, &[], None, None).await,
        ),
        (
            "write with a wrong token",
            app.send("POST", &write, &[], None, Some("not-a-token"))
                .await,
        ),
        (
            "delete without a credential",
            app.send("DELETE", "/api/v1/contacts/1", &[], None, None)
                .await,
        ),
    ] {
        assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated", what);
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer", "{what}");
    }
    assert!(!app.store.entry(numbers[0]).await.unwrap().unwrap().canceled);
}

#[tokio::test]
async fn path_query_and_body_rejections_are_json_errors() {
    let (app, numbers) = app_with_token().await;
    let token = Some("root-token");
    for (uri, what) in [
        (
            "/api/v1/interactions/99999999999999999999",
            "an id beyond i64",
        ),
        ("/api/v1/interactions/abc", "an id that is no number"),
        ("/api/v1/interactions?limit=null", "limit=null"),
        ("/api/v1/interactions?limit=0", "limit below 1"),
        ("/api/v1/interactions?limit=501", "limit above 500"),
        ("/api/v1/interactions?direction=", "an empty direction"),
        (
            "/api/v1/interactions?from=2026-02-31",
            "a day that does not exist",
        ),
        (
            "/api/v1/interactions?mailbox=a%20b",
            "a mailbox name with a space",
        ),
        (
            "/api/v1/interactions?before_no=x",
            "a cursor that is no number",
        ),
        ("/api/v1/decisions?reason=", "an empty reason"),
        (
            "/api/v1/contacts/%20x",
            "a code with white space at the start",
        ),
    ] {
        assert_json_error(
            &app.send("GET", uri, &[], None, token).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
            what,
        );
    }
    let comments = format!("/api/v1/interactions/{}/comments", numbers[0]);
    for (body, what) in [
        (
            serde_json::json!({ "comment": "x", "extra": 1 }),
            "an unknown property",
        ),
        (
            serde_json::json!({ "comment": "\u{3000}" }),
            "a comment of white space only",
        ),
        (
            serde_json::json!({ "comment": "x".repeat(501) }),
            "a comment too long",
        ),
        (
            serde_json::json!({ "comment": 5 }),
            "a comment that is no string",
        ),
    ] {
        assert_json_error(
            &app.send_json("POST", &comments, "root-token", Some(body))
                .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
            what,
        );
    }
    for (body, what) in [
        (serde_json::json!({ "name": "" }), "an empty name"),
        (
            serde_json::json!({ "name": "Carl", "addresses": ["carl@"] }),
            "an address without a domain",
        ),
        (
            serde_json::json!({ "name": "Carl", "kind": "robot" }),
            "an unknown kind",
        ),
        (
            serde_json::json!({ "name": "Carl", "colour": "red" }),
            "an unknown property",
        ),
    ] {
        assert_json_error(
            &app.send_json("PUT", "/api/v1/contacts/7", "root-token", Some(body))
                .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
            what,
        );
    }
    let opportunity = serde_json::json!({ "description": "Renewal", "estimated_value": " 12" });
    assert_json_error(
        &app.send_json(
            "POST",
            "/api/v1/opportunities",
            "root-token",
            Some(opportunity),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "an amount with a space",
    );
    let no_json = app
        .send("POST", &comments, &[], Some("comment=x"), token)
        .await;
    assert_json_error(
        &no_json,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "a form instead of JSON",
    );
    let empty_csv = Request::builder()
        .method("POST")
        .uri("/api/v1/contacts/import")
        .header(header::AUTHORIZATION, "Bearer root-token")
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::empty())
        .unwrap();
    assert_json_error(
        &app.answer(empty_csv).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "an empty CSV body",
    );

    // A method the path does not have: 405, JSON, and the Allow header.
    let reply = app.send("DELETE", "/api/v1/me", &[], None, token).await;
    assert_json_error(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "DELETE /me",
    );
    assert!(reply.headers.contains_key(header::ALLOW));
    // A state conflict is 409: one opportunity per entry.
    let uri = format!("/api/v1/interactions/{}/opportunity", numbers[1]);
    assert_eq!(
        app.send("POST", &uri, &[], None, token).await.status,
        StatusCode::CREATED
    );
    assert_json_error(
        &app.send("POST", &uri, &[], None, token).await,
        StatusCode::CONFLICT,
        "conflict",
        "a second opportunity",
    );
    // Pages keep their own error pages.
    let page = app.get("/interactions/abc", None).await;
    assert!(
        !page
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn the_document_lists_every_status_with_the_error_schema() {
    let app = App::new().await;
    let document = json(&app.get("/api/v1/openapi.json", None).await);
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if path == "/api/v1/openapi.json" {
                continue;
            }
            let unauthenticated = &responses["401"]["$ref"];
            assert_eq!(
                unauthenticated, "#/components/responses/Unauthenticated",
                "{method} {path}"
            );
            for (status, response) in responses {
                if !status.starts_with('2') && status != "401" {
                    assert_eq!(
                        response["$ref"], "#/components/responses/Error",
                        "{method} {path} {status}"
                    );
                }
            }
            if operation.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("400"),
                    "{method} {path}: a body can be malformed"
                );
            }
            if let Some(body) =
                operation["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                let body = match body.get("$ref").and_then(|r| r.as_str()) {
                    Some(reference) => {
                        &document["components"]["schemas"][reference.rsplit('/').next().unwrap()]
                    }
                    None => {
                        &operations[method]["requestBody"]["content"]["application/json"]["schema"]
                    }
                };
                assert_eq!(body["additionalProperties"], false, "{method} {path}");
            }
        }
    }
    let header =
        &document["components"]["responses"]["Unauthenticated"]["headers"]["WWW-Authenticate"];
    assert_eq!(header["required"], true);
}
