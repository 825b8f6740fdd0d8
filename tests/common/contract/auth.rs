//! The contract's refusals and secrets: error answers, groups (the lease's home),
//! scopes, the health and metrics endpoints, and user tokens.

use super::*;

impl Contract {
    /// Error paths, single-user creation, who a token is, groups (the lease's API) and a
    /// token without a scope. `groups_token` holds admin:groups; `no_groups` holds the
    /// README's role without it.
    pub async fn errors_groups_and_scopes(&self, groups_token: &str, no_groups: &str) {
        use Method as M;
        let one = self.name("one");
        let r = self.authed(M::POST, &format!("/users/{one}"), None).await;
        assert_eq!(r.status, 201, "POST /users/NAME creates: {}", r.body);
        assert_eq!(r.json()["name"], one.as_str());
        let r = self.authed(M::POST, &format!("/users/{one}"), None).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let invalid = |r: &Answer| {
            assert_eq!(r.status, 400, "{}", r.body);
            assert_eq!(r.json()["message"], "Invalid JSON in body of request");
        };
        let raw = |method: M, path: String| {
            self.http
                .request(method, format!("{}{}", self.api, path))
                .header("Authorization", format!("token {}", self.token))
                .header("Content-Type", "application/json")
                .body("{not json")
        };
        for (method, path) in [
            (M::POST, format!("/users/{}", self.name("two"))),
            (M::POST, "/users".to_string()),
            (M::POST, format!("/users/{one}/activity")),
        ] {
            let resp = raw(method, path).send().await.expect("the hub answers");
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            invalid(&Answer {
                status,
                headers: Default::default(),
                body,
            });
        }
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": []})))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        let nobody = self.name("nobody");
        for (method, path) in [
            (M::POST, format!("/users/{nobody}/server")),
            (M::DELETE, format!("/users/{nobody}/server")),
            (M::GET, format!("/users/{nobody}/server/progress")),
        ] {
            let r = self.authed(method.clone(), &path, Some(json!({}))).await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        }
        let r = self.authed(M::DELETE, &format!("/users/{one}"), None).await;
        assert_eq!(r.status, 204);

        // Who a token is, and its scopes.
        let with = |token: &str| Some(token.to_string());
        let r = self
            .call(M::GET, "/user", None, with(groups_token).as_deref())
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["kind"], "service");
        let scopes = r.json()["scopes"].clone();
        for scope in ["admin:groups", "admin:users", "servers", "list:users"] {
            assert!(
                scopes
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == scope)),
                "{scope} in {scopes}"
            );
        }
        let r = self.call(M::GET, "/user", None, Some("not-a-token")).await;
        assert_eq!(r.status, 403, "{}", r.body);

        // Groups, as the lease uses them.
        let g = self.name("lease");
        let call = |m: M, path: String, body: Option<Value>| {
            let token = groups_token.to_string();
            async move { self.call(m, &path, body, Some(&token)).await }
        };
        let r = call(M::GET, format!("/groups/{g}"), None).await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(r.body.contains("No such group"), "{}", r.body);
        let r = call(
            M::PUT,
            format!("/groups/{g}/properties"),
            Some(json!({"k": 1})),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = call(M::POST, format!("/groups/{g}"), Some(json!({}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["properties"], json!({}));
        let r = call(M::POST, format!("/groups/{g}"), Some(json!({}))).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let r = call(
            M::PUT,
            format!("/groups/{g}/properties"),
            Some(json!({"k": 1})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = call(M::GET, format!("/groups/{g}"), None).await;
        assert_eq!(r.json()["properties"], json!({"k": 1}), "{}", r.body);
        let r = call(
            M::PUT,
            format!("/groups/{g}/properties"),
            Some(json!([1, 2])),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["message"], "Must specify properties");

        // A token without admin:groups: told so, for reading and for writing.
        let r = self.call(M::GET, "/user", None, Some(no_groups)).await;
        assert_eq!(r.status, 200);
        assert!(
            r.json()["scopes"]
                .as_array()
                .is_some_and(|s| !s.iter().any(|x| x == "admin:groups")),
            "{}",
            r.body
        );
        for (method, path) in [
            (M::GET, format!("/groups/{g}")),
            (M::POST, format!("/groups/{g}x")),
        ] {
            let r = self
                .call(method.clone(), &path, None, Some(no_groups))
                .await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
            assert!(
                r.body.contains("not authorized with current scopes"),
                "{}",
                r.body
            );
        }
        let r = self
            .call(M::GET, "/users?limit=1", None, Some(no_groups))
            .await;
        assert_eq!(r.status, 200, "its other scopes work: {}", r.body);

        let r = call(M::DELETE, format!("/groups/{g}"), None).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = call(M::DELETE, format!("/groups/{g}"), None).await;
        assert_eq!(r.status, 404, "{}", r.body);
    }

    /// The hub's health and metrics pages, and users' own tokens (journeys' user-token
    /// mode): made, used, revoked, and the errors around them.
    /// `tokens_token` holds the `tokens` scope.
    pub async fn health_metrics_and_user_tokens(&self, tokens_token: &str) {
        use Method as M;
        let hub = self.api.trim_end_matches("/api").to_string();
        let r = self.http.get(format!("{hub}/health")).send().await.unwrap();
        assert_eq!(r.status(), 200, "health needs no token");
        let r = self
            .http
            .get(format!("{hub}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            403,
            "metrics need a token (authenticate_prometheus)"
        );
        let r = self
            .http
            .get(format!("{hub}/metrics"))
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap_or_default();
        assert!(
            text.contains("jupyterhub_server_spawn_duration_seconds"),
            "{text}"
        );

        let u = self.name("tok");
        let r = self
            .authed(M::POST, "/users", Some(json!({"usernames": [u]})))
            .await;
        assert_eq!(r.status, 201);
        let r = self
            .call(
                M::POST,
                &format!("/users/{u}/tokens"),
                Some(json!({"note": "contract", "expires_in": 600})),
                Some(tokens_token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let made = r.json();
        let (secret, id) = (
            made["token"].as_str().unwrap_or("").to_string(),
            made["id"].as_str().unwrap_or("").to_string(),
        );
        assert!(!secret.is_empty() && !id.is_empty(), "{made}");
        // The user's token reads the user, and not another user.
        let r = self
            .call(M::GET, &format!("/users/{u}"), None, Some(&secret))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = self
            .call(
                M::GET,
                &format!("/users/{}", self.name("x")),
                None,
                Some(&secret),
            )
            .await;
        assert!(
            r.status == 403 || r.status == 404,
            "{}: {}",
            r.status,
            r.body
        );
        let r = self
            .call(
                M::DELETE,
                &format!("/users/{u}/tokens/{id}"),
                None,
                Some(tokens_token),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = self
            .call(M::GET, &format!("/users/{u}"), None, Some(&secret))
            .await;
        assert_eq!(r.status, 403, "a revoked token: {}", r.body);
        let r = self
            .call(
                M::DELETE,
                &format!("/users/{u}/tokens/{id}"),
                None,
                Some(tokens_token),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = self
            .call(
                M::POST,
                &format!("/users/{}/tokens", self.name("nobody")),
                Some(json!({})),
                Some(tokens_token),
            )
            .await;
        assert_eq!(
            r.status, 403,
            "JupyterHub: not found or no permission: {}",
            r.body
        );
        let r = self.authed(M::DELETE, &format!("/users/{u}"), None).await;
        assert_eq!(r.status, 204);
    }
}
