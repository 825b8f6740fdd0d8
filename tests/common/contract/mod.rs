//! The API contract: one list of calls, each with the status code and resulting state
//! JupyterHub gives. Run against the simulator here and against a real hub by the
//! real-hub suite; where they disagree, the simulator is wrong.
#![allow(dead_code)]

mod auth;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct Contract {
    http: reqwest::Client,
    /// `http://host:port/hub/api`
    pub api: String,
    pub token: String,
    /// A unique stem for this run's users.
    pub stem: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Contract {
    pub fn new(api: &str, token: &str, stem: &str) -> Self {
        Contract {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            api: api.trim_end_matches('/').to_string(),
            token: token.to_string(),
            stem: stem.to_string(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.api, path));
        if let Some(token) = auth {
            req = req.header("Authorization", format!("token {token}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the hub answers");
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap_or_default(),
        }
    }

    pub async fn authed(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, body, Some(&self.token.clone()))
            .await
    }

    /// Polls `GET /users/{name}` until `done` holds for its model, up to `seconds`.
    pub async fn until_user(
        &self,
        name: &str,
        seconds: u64,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let u = self
                .authed(Method::GET, &format!("/users/{name}"), None)
                .await
                .json();
            if done(&u) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} within {seconds} s: {u}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn name(&self, n: &str) -> String {
        format!("{}{}", self.stem, n)
    }

    /// Users, tokens, creation, listing, activity, deletion: needs no spawner.
    pub async fn users_and_activity(&self) {
        use Method as M;
        let (a, b, c) = (self.name("a"), self.name("b"), self.name("c"));
        let v = self.call(M::GET, "/", None, None).await;
        assert_eq!(v.status, 200);
        assert!(v.json()["version"].is_string(), "{}", v.body);
        assert!(v.headers.contains_key("x-jupyterhub-version"));

        let r = self.call(M::GET, "/users", None, None).await;
        assert_eq!(r.status, 403, "no token");
        assert_eq!(r.json()["status"], 403);
        let r = self
            .call(M::GET, "/users", None, Some("not-the-token"))
            .await;
        assert_eq!(r.status, 403, "wrong token");

        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [a, b]})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json().as_array().map(Vec::len), Some(2));
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [a, b]})))
            .await;
        assert_eq!(r.status, 409, "all exist: {}", r.body);
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [a, c]})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let created = r.json();
        assert_eq!(
            created.as_array().map(Vec::len),
            Some(1),
            "existing names skipped: {created}"
        );
        assert_eq!(created[0]["name"], c.as_str());

        let r = self.authed(M::GET, &format!("/users/{a}"), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["servers"], json!({}));
        assert_eq!(r.json()["last_activity"], Value::Null);
        let r = self
            .authed(M::GET, &format!("/users/{}", self.name("nobody")), None)
            .await;
        assert_eq!(r.status, 404);

        // Pagination: 3 of ours, 2 to a page, with and without the header.
        let mut url = format!("/users?name_filter={}&limit=2", self.stem);
        let page = self
            .http
            .get(format!("{}{}", self.api, url))
            .header("Authorization", format!("token {}", self.token))
            .header("Accept", "application/jupyterhub-pagination+json")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let page: Value = page.json().await.unwrap();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
        assert_eq!(page["_pagination"]["total"], 3);
        assert_eq!(page["_pagination"]["next"]["offset"], 2);
        let r = self.authed(M::GET, &url, None).await;
        assert!(
            r.json().is_array(),
            "a plain list without the header: {}",
            r.body
        );
        url.push_str("&offset=2");
        let r = self.authed(M::GET, &url, None).await;
        assert_eq!(r.json().as_array().map(Vec::len), Some(1));

        // Activity as a single-user server reports it.
        let now = chrono::Utc::now();
        let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = json!({"last_activity": ts, "servers": {"": {"last_activity": ts}}});
        let r = self
            .authed(M::POST, &format!("/users/{a}/activity"), Some(body))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = self.authed(M::GET, &format!("/users/{a}"), None).await;
        assert!(
            r.json()["last_activity"].is_string(),
            "activity recorded: {}",
            r.body
        );
        let bad = [
            json!({"last_activity": ts, "servers": {"nosuch": {"last_activity": ts}}}),
            json!({"last_activity": (now + chrono::Duration::hours(2)).to_rfc3339()}),
            json!({}),
        ];
        for body in bad {
            let r = self
                .authed(M::POST, &format!("/users/{a}/activity"), Some(body.clone()))
                .await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
        }
        let r = self
            .authed(
                M::POST,
                &format!("/users/{}/activity", self.name("nobody")),
                Some(json!({"last_activity": ts})),
            )
            .await;
        assert_eq!(r.status, 404);

        // No server: progress 404 until a start or stop has loaded the spawner, 400
        // after; stopping a server that is not running is 204.
        let r = self
            .authed(M::GET, &format!("/users/{a}/server/progress"), None)
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = self
            .authed(M::DELETE, &format!("/users/{a}/server"), None)
            .await;
        assert_eq!(r.status, 204);
        let r = self
            .authed(M::GET, &format!("/users/{a}/server/progress"), None)
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("not starting"));
        let r = self
            .authed(M::DELETE, &format!("/users/{}", self.name("nobody")), None)
            .await;
        assert_eq!(r.status, 404);

        for name in [&a, &b, &c] {
            let r = self
                .authed(M::DELETE, &format!("/users/{name}"), None)
                .await;
            assert_eq!(r.status, 204, "{name}: {}", r.body);
        }
        let r = self.authed(M::DELETE, &format!("/users/{a}"), None).await;
        assert_eq!(r.status, 404);
    }

    /// A server's life: start, already running, progress, stop. Needs a spawner that
    /// is ready within the hub's slow_spawn_timeout.
    pub async fn server_lifecycle(&self) {
        use Method as M;
        let a = self.name("life");
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [a]})))
            .await;
        assert_eq!(r.status, 201);
        let r = self
            .authed(M::POST, &format!("/users/{a}/server"), Some(json!({})))
            .await;
        assert!(
            r.status == 201 || r.status == 202,
            "{}: {}",
            r.status,
            r.body
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let u = self
                .authed(M::GET, &format!("/users/{a}"), None)
                .await
                .json();
            if u["servers"][""]["ready"] == true {
                assert_eq!(u["servers"][""]["pending"], Value::Null);
                assert!(u["servers"][""]["url"]
                    .as_str()
                    .is_some_and(|s| s.contains(&a)));
                break;
            }
            assert!(Instant::now() < deadline, "server ready in 30 s: {u}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = self
            .authed(M::POST, &format!("/users/{a}/server"), Some(json!({})))
            .await;
        assert_eq!(r.status, 400, "already running: {}", r.body);
        assert!(r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("already running"));
        let r = self
            .authed(M::GET, &format!("/users/{a}/server/progress"), None)
            .await;
        assert_eq!(r.status, 200);
        let events: Vec<Value> = r
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect();
        assert_eq!(events.len(), 1, "only the terminal event: {}", r.body);
        assert_eq!(events[0]["ready"], true);
        let r = self
            .authed(
                M::POST,
                &format!("/users/{a}/servers/named"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 400, "named servers disabled: {}", r.body);
        let r = self
            .authed(M::DELETE, &format!("/users/{a}/server"), None)
            .await;
        assert!(r.status == 204 || r.status == 202, "{}", r.status);
        self.until_user(&a, 30, "server stopped", |u| u["servers"] == json!({}))
            .await;
        let r = self.authed(M::DELETE, &format!("/users/{a}"), None).await;
        assert_eq!(r.status, 204);
    }

    /// Named servers (the hub must allow them) and the login form's XSRF check.
    pub async fn named_servers_and_login(&self) {
        use Method as M;
        let u = self.name("named");
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [u]})))
            .await;
        assert_eq!(r.status, 201);
        // 6.x checks server names (1-30 of a-z, 0-9, '-'); 5.x takes any.
        let version = self.call(M::GET, "/", None, None).await.json()["version"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let r = self
            .authed(
                M::POST,
                &format!("/users/{u}/servers/Bad_Name"),
                Some(json!({})),
            )
            .await;
        if version.starts_with("5.") {
            assert!(
                r.status == 201 || r.status == 202,
                "{}: {}",
                r.status,
                r.body
            );
            let _ = self
                .authed(M::DELETE, &format!("/users/{u}/servers/Bad_Name"), None)
                .await;
            self.until_user(&u, 30, "Bad_Name stopped", |m| m["servers"] == json!({}))
                .await;
        } else {
            assert_eq!(r.status, 400, "{}", r.body);
            assert!(r.body.contains("Invalid server_name"), "{}", r.body);
        }
        let r = self
            .authed(M::POST, &format!("/users/{u}/servers/s1"), Some(json!({})))
            .await;
        assert!(
            r.status == 201 || r.status == 202,
            "{}: {}",
            r.status,
            r.body
        );
        self.until_user(&u, 30, "s1 ready", |m| m["servers"]["s1"]["ready"] == true)
            .await;
        let r = self
            .authed(M::GET, &format!("/users/{u}/servers/s1/progress"), None)
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains("\"ready\": true") || r.body.contains("\"ready\":true"),
            "{}",
            r.body
        );
        let r = self
            .authed(M::POST, &format!("/users/{u}/servers/s1"), Some(json!({})))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("already running"), "{}", r.body);
        for (method, path) in [
            (M::DELETE, format!("/users/{u}/servers/nosuch")),
            (M::GET, format!("/users/{u}/servers/nosuch/progress")),
            (
                M::POST,
                format!("/users/{}/servers/s1", self.name("nobody")),
            ),
        ] {
            let r = self.authed(method.clone(), &path, Some(json!({}))).await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        }
        let r = self
            .authed(M::DELETE, &format!("/users/{u}/servers/s1"), None)
            .await;
        assert!(r.status == 204 || r.status == 202, "{}", r.status);
        self.until_user(&u, 30, "s1 stopped", |m| m["servers"] == json!({}))
            .await;
        let r = self.authed(M::DELETE, &format!("/users/{u}"), None).await;
        assert_eq!(r.status, 204);

        // The login form: a page with an _xsrf cookie; a POST without it is refused.
        let hub = self.api.trim_end_matches("/api").to_string();
        let r = self.http.get(format!("{hub}/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        assert!(
            cookies.iter().any(|c| c.starts_with("_xsrf=")),
            "{cookies:?}"
        );
        let r = self
            .http
            .post(format!("{hub}/login"))
            .form(&[("username", "a"), ("password", "b")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "no _xsrf");
    }

    /// A user's server as hubsoak's journeys use it, through the proxy with hubsoak's
    /// token (which needs access:servers): its API, a kernel made and deleted, a
    /// request without a token refused, and a stopped server's redirect to the hub's 424.
    /// Needs servers that really answer (the simulator's, or jupyterhub-singleuser).
    pub async fn single_user_routes(&self) {
        use Method as M;
        let root = self.api.trim_end_matches("/hub/api").to_string();
        let u = self.name("su");
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [u]})))
            .await;
        assert_eq!(r.status, 201);
        let r = self
            .authed(M::POST, &format!("/users/{u}/server"), Some(json!({})))
            .await;
        assert!(
            r.status == 201 || r.status == 202,
            "{}: {}",
            r.status,
            r.body
        );
        self.until_user(&u, 90, "ready", |m| m["servers"][""]["ready"] == true)
            .await;
        let server = |method: M, path: &str, token: Option<&str>| {
            let mut req = self
                .http
                .request(method, format!("{root}/user/{u}/{path}"))
                .header("Content-Type", "application/json");
            if let Some(t) = token {
                req = req.header("Authorization", format!("token {t}"));
            }
            req
        };
        let token = self.token.clone();
        let r = server(M::GET, "api", Some(&token)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(v["version"].is_string(), "{v}");
        let r = server(M::POST, "api/kernels", Some(&token))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let kernel: Value = r.json().await.unwrap_or(Value::Null);
        let id = kernel["id"].as_str().unwrap_or("").to_string();
        assert!(!id.is_empty(), "{kernel}");
        let path = format!("api/kernels/{id}");
        let r = server(M::DELETE, &path, Some(&token)).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = server(M::DELETE, &path, Some(&token)).send().await.unwrap();
        assert_eq!(r.status(), 404, "a deleted kernel");
        let r = server(M::POST, "api/kernels", None)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "no token");

        let r = self
            .authed(M::DELETE, &format!("/users/{u}/server"), None)
            .await;
        assert!(r.status == 204 || r.status == 202, "{}", r.status);
        self.until_user(&u, 60, "stopped", |m| m["servers"] == json!({}))
            .await;
        let no_follow = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = no_follow
            .get(format!("{root}/user/{u}/api"))
            .header("Authorization", format!("token {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "a stopped server's path goes to the hub");
        let to = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(to.contains(&format!("/hub/user/{u}/api")), "{to}");
        let r = no_follow
            .get(format!("{root}/hub/user/{u}/api"))
            .header("Authorization", format!("token {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 424, "not running");
        let r = self.authed(M::DELETE, &format!("/users/{u}"), None).await;
        assert_eq!(r.status, 204);
    }
}
