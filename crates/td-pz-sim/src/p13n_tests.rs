//! The strict p13n checks over real sockets, one documented code each.

use serde_json::{json, Value};

use super::super::tests::{json, read, start, KEY, TOKEN};
use super::super::Simulator;
use super::*;

const SERVER: &str = "/rt_events/web_personalization";
const PUBLIC: &str = "/public/rt_events/web_personalization";
const EVENT: &str = r#"{"td_client_id":"vip_user_001","time":1700760737,"uuid":"5505C764-00FC-469B-8EEF-F85A0FC85794"}"#;

/// A request as the server path wants it; `edit` changes it before it is sent.
async fn post(
    sim: &Simulator,
    path: &str,
    body: &str,
    edit: impl FnOnce(&mut reqwest::Request),
) -> (u16, Option<String>, String) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{}{path}", sim.url()))
        .header("Authorization", format!("TD1 {KEY}"))
        .header("WP13n-Token", TOKEN)
        .header("Content-Type", "application/vnd.treasuredata.v1+json")
        .header("Accept", "application/vnd.treasuredata.v1+json")
        .body(body.to_string())
        .build()
        .expect("a request");
    edit(&mut req);
    read(client.execute(req).await.expect("an answer")).await
}

/// The status and TD code of an error answer, checking its content type.
async fn code(
    sim: &Simulator,
    path: &str,
    body: &str,
    edit: impl FnOnce(&mut reqwest::Request),
) -> (u16, Value) {
    let (status, ct, text) = post(sim, path, body, edit).await;
    assert_eq!(ct.as_deref(), Some("application/json"), "{text}");
    (status, json(&text)["code"].clone())
}

fn same(_: &mut reqwest::Request) {}

/// Sets (or, with `None`, removes) one header.
fn set(name: &'static str, value: Option<&'static str>) -> impl FnOnce(&mut reqwest::Request) {
    move |r| match value {
        Some(v) => {
            r.headers_mut()
                .insert(name, reqwest::header::HeaderValue::from_static(v));
        }
        None => {
            r.headers_mut().remove(name);
        }
    }
}

#[tokio::test]
async fn a_valid_event_gets_offers_and_one_without_time_or_uuid_is_3004() {
    let sim = start("{}").await;
    let (status, ct, text) = post(&sim, SERVER, EVENT, same).await;
    assert_eq!((status, ct.as_deref()), (200, Some("application/json")));
    assert_eq!(
        json(&text),
        json!({"offers": {"premium_users": {"attributes": {
            "recommended_products": ["prod_123", "prod_456", "prod_789"],
            "exclusive_offers": ["offer_10", "offer_20"],
            "customer_tier": "premium", "purchase_count_30d": 12},
            "batch_segments": [{"id": 1}]}}})
    );
    for body in [
        r#"{"td_client_id":"vip"}"#,
        r#"{"td_client_id":"vip","time":1700760737}"#,
        r#"{"td_client_id":"vip","uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#,
        r#"{"time":"1700760737","uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#,
        r#"{"time":1700760737.5,"uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#,
        r#"{"time":-1,"uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#,
        r#"{"time":1700760737,"uuid":"not-a-uuid"}"#,
        r#"[1,2]"#,
        "",
    ] {
        assert_eq!(
            code(&sim, SERVER, body, same).await,
            (400, json!(3004)),
            "{body}"
        );
    }
    assert_eq!(sim.state.count("p13n"), 10);
    assert_eq!(sim.state.count("p13n/web_offers"), 10);
}

#[tokio::test]
async fn media_types_are_checked_on_the_server_path() {
    let sim = start("{}").await;
    let ct = |v: &'static str| set("content-type", Some(v));
    let with_charset = "application/vnd.treasuredata.v1+json; charset=utf-8";
    assert_eq!(post(&sim, SERVER, EVENT, ct(with_charset)).await.0, 200);
    let (s, c) = code(&sim, SERVER, EVENT, ct("application/json")).await;
    assert_eq!((s, c), (400, json!(3004)));
    let accept = |v: &'static str| set("accept", Some(v));
    assert_eq!(post(&sim, SERVER, EVENT, accept("*/*")).await.0, 200);
    assert_eq!(
        post(&sim, SERVER, EVENT, accept("application/*")).await.0,
        200
    );
    let refused = code(&sim, SERVER, EVENT, accept("text/html")).await;
    assert_eq!(refused, (400, json!(3004)));
}

#[tokio::test]
async fn the_public_path_takes_what_td_js_sdk_sends_with_an_origin() {
    let sim = start(
        r#"{"services":[{"name":"shop","flavor":"p13n","database":"rt_db","table":"shop_web",
            "allowed_origins":["https://shop.example"]}]}"#,
    )
    .await;
    // td-js-sdk 4.4.3 fetchPersonalization: the caller's data, no time, no uuid.
    let sdk = |origin: Option<&'static str>| {
        move |r: &mut reqwest::Request| {
            set("content-type", Some("application/json"))(r);
            set("accept", None)(r);
            set("origin", origin)(r);
        }
    };
    let body = r#"{"td_client_id":"new_user_1","page":"home"}"#;
    let (status, _, text) = post(&sim, PUBLIC, body, sdk(Some("https://www.example.com"))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        json(&text)["offers"]["new_users"]["attributes"]["welcome_offer"],
        "WELCOME10"
    );
    assert_eq!(
        post(&sim, PUBLIC, EVENT, sdk(Some("http://localhost:8080")))
            .await
            .0,
        200
    );
    for origin in [
        None,
        Some("null"),
        Some("https://a.example/path"),
        Some("ftp://a.example"),
    ] {
        let got = code(&sim, PUBLIC, body, sdk(origin)).await;
        assert_eq!(got, (400, json!(3007)), "{origin:?}");
    }
    let shop = "/public/rt_db/shop_web";
    assert_eq!(
        post(&sim, shop, body, sdk(Some("https://shop.example")))
            .await
            .0,
        200
    );
    let other = code(&sim, shop, body, sdk(Some("https://other.example"))).await;
    assert_eq!(other, (400, json!(3007)));
    assert_eq!(sim.state.count("p13n_public"), 8);
}

#[tokio::test]
async fn tokens_are_checked_in_the_documented_order() {
    let sim = start(
        r#"{"services":[{"name":"own","flavor":"p13n","database":"own_db",
        "table":"own_table","token":"1/9/ffffffffffffffffffffffffffffffff"}]}"#,
    )
    .await;
    let token = |v: &'static str| set("wp13n-token", Some(v));
    let missing = code(&sim, SERVER, EVENT, set("wp13n-token", None)).await;
    assert_eq!(missing, (400, json!(3000)));
    for bad in [
        "1/2/0123",
        "1/2/0123456789abcdef0123456789TOKEN",
        "a/2/0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(
            code(&sim, SERVER, EVENT, token(bad)).await,
            (400, json!(3003)),
            "{bad}"
        );
    }
    let other = "1/2/0123456789ABCDEF0123456789ABCDEF";
    assert_eq!(
        code(&sim, SERVER, EVENT, token(other)).await,
        (400, json!(3001))
    );
    // A service's own token replaces the configured one.
    let own = "/own_db/own_table";
    let mine = "1/9/ffffffffffffffffffffffffffffffff";
    assert_eq!(post(&sim, own, EVENT, token(mine)).await.0, 200);
    assert_eq!(code(&sim, own, EVENT, same).await, (400, json!(3001)));
    let wrong_key = set("authorization", Some("TD1 1/other"));
    assert_eq!(post(&sim, SERVER, EVENT, wrong_key).await.0, 401);
}

#[tokio::test]
async fn a_token_of_another_account_is_3002() {
    let sim = Simulator::start(
        "127.0.0.1:0",
        super::super::SimConfig {
            api_key: "7/KEY".into(),
            p13n_token: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let key = set("authorization", Some("TD1 7/KEY"));
    assert_eq!(code(&sim, SERVER, EVENT, key).await, (400, json!(3002)));
}

#[tokio::test]
async fn methods_ips_and_names() {
    let sim = start(
        r#"{"services":[{"name":"ips","flavor":"p13n","database":"ip_db",
        "table":"ip_table","allowed_ips":["10.1.2.3"]},
        {"name":"lo","flavor":"p13n","database":"lo_db","table":"lo_table",
        "allowed_ips":["127.0.0.1"]}]}"#,
    )
    .await;
    let put = |r: &mut reqwest::Request| *r.method_mut() = reqwest::Method::PUT;
    assert_eq!(code(&sim, SERVER, EVENT, put).await, (400, json!(3009)));
    assert_eq!(
        code(&sim, "/ip_db/ip_table", EVENT, same).await,
        (400, json!(3005))
    );
    assert_eq!(post(&sim, "/lo_db/lo_table", EVENT, same).await.0, 200);
    let (status, _, text) = post(&sim, "/RT_events/web", EVENT, same).await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(
        post(&sim, "/rt_events/no_such_table", EVENT, same).await.0,
        404
    );
}

#[tokio::test]
async fn td_codes_answer_at_their_family_status() {
    for (td, status, message) in [
        (
            3006,
            400,
            "Invalid token type. Token type is not matching the one in the configuration.",
        ),
        (
            2013,
            429,
            "Lambda total concurrent execution exceeds the reserved concurrency",
        ),
        (1003, 500, "Kinesis is unreachable or timed out"),
        (3013, 500, "Unable to retrieve Client IP from request"),
    ] {
        let sim = start(&format!(
            r#"{{"faults":[{{"endpoint":"p13n","td_code":{td}}}]}}"#
        ))
        .await;
        let (s, ct, text) = post(&sim, SERVER, EVENT, same).await;
        assert_eq!((s, ct.as_deref()), (status, Some("application/json")));
        assert_eq!(json(&text), json!({"code": td, "message": message}));
    }
    for (st, body) in [
        (
            429,
            json!({"code": 2003, "message": "Kinesis error due to limit being exceeded"}),
        ),
        (500, json!({"code": 9999, "message": "Unknown/undiagnosed"})),
        (
            400,
            json!({"code": 3004, "message": "Invalid event object."}),
        ),
        (503, json!({"message": "simulated 503"})),
    ] {
        let sim = start(&format!(
            r#"{{"faults":[{{"endpoint":"p13n","status":{st}}}]}}"#
        ))
        .await;
        let (s, _, text) = post(&sim, SERVER, EVENT, same).await;
        assert_eq!((s, json(&text)), (st, body));
    }
}

#[tokio::test]
async fn no_offers_variants() {
    for (variant, status, body) in [
        ("204", 204, ""),
        ("empty", 200, ""),
        ("{}", 200, "{}"),
        ("offers_empty", 200, r#"{"offers":{}}"#),
    ] {
        let sc = json!({"faults": [{"endpoint": "p13n", "no_offers": variant}]}).to_string();
        let sim = start(&sc).await;
        let (s, _, text) = post(&sim, SERVER, EVENT, same).await;
        assert_eq!((s, text.as_str()), (status, body), "{variant}");
    }
}

#[tokio::test]
async fn the_user_is_read_from_the_services_user_key() {
    let sim = start(
        r#"{"services":[{"name":"keyed","flavor":"p13n","database":"k_db",
        "table":"k_table","user_key":"customer"}],
        "faults":[{"user_id":"cart_7","section":"picked"}]}"#,
    )
    .await;
    let body =
        r#"{"a":"vip","customer":"cart_7","time":1,"uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#;
    let (s, _, text) = post(&sim, "/k_db/k_table", body, same).await;
    assert_eq!(s, 200);
    assert!(json(&text)["offers"]["picked"].is_object(), "{text}");
    // Without the key: the first string field other than uuid.
    let (_, _, text) = post(
        &sim,
        SERVER,
        r#"{"a":"vip_1","time":1,"uuid":"5505c764-00fc-469b-8eef-f85a0fc85794"}"#,
        same,
    )
    .await;
    assert!(json(&text)["offers"]["premium_users"].is_object(), "{text}");
}

#[test]
fn uuid_forms() {
    assert!(uuid_ok("b82aad42-481b-4ca7-87c0-848a34f3c85f"));
    assert!(!uuid_ok("b82aad42481b4ca787c0848a34f3c85f"));
}

#[tokio::test]
async fn accept_any_service_still_checks_the_request() {
    let sim = start(r#"{"accept_any_service":true}"#).await;
    assert_eq!(post(&sim, "/load_db/any_table", EVENT, same).await.0, 200);
    let bad = code(&sim, "/load_db/any_table", r#"{"td_client_id":"u"}"#, same).await;
    assert_eq!(bad, (400, json!(3004)));
    assert_eq!(sim.state.count("p13n/any_table"), 2);
    let revoked = start(r#"{"revoked":true}"#).await;
    assert_eq!(post(&revoked, SERVER, EVENT, same).await.0, 401);
}
