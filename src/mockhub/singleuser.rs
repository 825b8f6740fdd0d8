//! What the simulator knows of logins and single-user servers, as a real 6.x hub with
//! jupyter_server behaves (checked against one): the hub's login form with its `_xsrf`
//! cookie and field; the server's OAuth handshake (authorize → oauth_callback, which
//! sets the server's own cookie and `_xsrf` on the server's path); the kernels API;
//! a kernel's websocket (the simulated kernel is kernel.rs); and on a stopped server,
//! 302 to /hub/user/… which answers 424.

#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, Method, Response, StatusCode};
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};

use super::http::{api_error, json_response};
use super::tokens::authorize as authorize_api;
use super::{MockHub, Phase};

type Resp = Response<Body>;

const HUB_LOGIN_COOKIE: &str = "jupyterhub-hub-login";

/// Sessions, OAuth codes and kernels.
#[derive(Default)]
pub struct SingleUserState {
    /// Hub login cookie → user.
    hub_sessions: HashMap<String, String>,
    /// The login form's `_xsrf` values handed out.
    login_xsrf: std::collections::HashSet<String>,
    /// OAuth state → (user, where to go after the callback).
    states: HashMap<String, (String, String)>,
    /// OAuth code → user.
    codes: HashMap<String, String>,
    /// Server cookie → (user, the server's `_xsrf`).
    server_sessions: HashMap<String, (String, String)>,
    /// Kernel id → (user, server).
    kernels: HashMap<String, (String, String)>,
    /// Users' own tokens: secret → (user, id).
    user_tokens: HashMap<String, (String, String)>,
    /// Kernels started, and deleted through the API, ever (for tests).
    pub kernels_started: u64,
    pub kernels_deleted: u64,
}

impl SingleUserState {
    pub fn user_tokens_len(&self) -> usize {
        self.user_tokens.len()
    }

    /// The user a user token belongs to.
    pub fn user_of(&self, secret: &str) -> Option<String> {
        self.user_tokens.get(secret).map(|(u, _)| u.clone())
    }
}

pub fn routes() -> Router<MockHub> {
    Router::new()
        .route(
            "/hub/login",
            axum::routing::get(login_page).post(login_submit),
        )
        .route("/hub/api/oauth2/authorize", axum::routing::get(authorize))
        .route(
            "/hub/api/users/{name}/tokens",
            axum::routing::post(create_token),
        )
        .route(
            "/hub/api/users/{name}/tokens/{id}",
            axum::routing::delete(revoke_token),
        )
        .route("/hub/user/{*rest}", axum::routing::any(not_running))
        .route("/user/{name}/{*rest}", axum::routing::any(single_user))
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn redirect(to: &str, set_cookies: &[String]) -> Resp {
    let mut b = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to);
    for c in set_cookies {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Body::empty()).unwrap_or_default()
}

fn html(status: StatusCode, body: &str) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

async fn login_page(State(hub): State<MockHub>) -> Resp {
    let xsrf = token();
    hub.su().login_xsrf.insert(xsrf.clone());
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html")
        .header(header::SET_COOKIE, format!("_xsrf={xsrf}; Path=/hub/"))
        .body(Body::from(format!(
            "<form method=post><input type=hidden name=_xsrf value=\"{xsrf}\"></form>"
        )))
        .unwrap_or_default()
}

async fn login_submit(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Resp {
    let field = form.get("_xsrf").cloned().unwrap_or_default();
    let issued = cookie(&headers, "_xsrf")
        .filter(|c| *c == field && hub.su().login_xsrf.contains(c))
        .is_some();
    if !issued {
        return html(StatusCode::FORBIDDEN, "'_xsrf' argument missing from POST");
    }
    let user = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let wrong_password = hub
        .inner
        .cfg
        .login_password
        .as_ref()
        .is_some_and(|p| *p != password);
    if user.is_empty() || wrong_password {
        return html(StatusCode::OK, "Invalid username or password");
    }
    // DummyAuthenticator: a login makes the user.
    hub.add_user(&user);
    let session = token();
    hub.su().hub_sessions.insert(session.clone(), user);
    redirect(
        "/hub/spawn",
        &[format!(
            "{HUB_LOGIN_COOKIE}={session}; Path=/hub/; HttpOnly"
        )],
    )
}

async fn authorize(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Resp {
    let user =
        cookie(&headers, HUB_LOGIN_COOKIE).and_then(|s| hub.su().hub_sessions.get(&s).cloned());
    let Some(user) = user else {
        return redirect("/hub/login", &[]);
    };
    let (Some(client), Some(redirect_uri), Some(state)) =
        (q.get("client_id"), q.get("redirect_uri"), q.get("state"))
    else {
        return api_error(StatusCode::BAD_REQUEST, "Missing OAuth parameters");
    };
    // A user may only authorize their own servers' clients.
    if !client.starts_with(&format!("jupyterhub-user-{user}")) {
        return api_error(StatusCode::FORBIDDEN, "Not your server");
    }
    let code = token();
    hub.su().codes.insert(code.clone(), user);
    redirect(&format!("{redirect_uri}?code={code}&state={state}"), &[])
}

/// `POST /users/{name}/tokens` by an admin: a token with the user's own permissions.
async fn create_token(
    State(hub): State<MockHub>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Resp {
    if let Err(resp) = authorize_api(&hub, &headers) {
        return resp;
    }
    if !hub.user_names().contains(&name) {
        // JupyterHub does not say which: an unknown user or a missing permission.
        return api_error(
            StatusCode::FORBIDDEN,
            &format!("User {name} not found or no permissions to generate tokens"),
        );
    }
    let (secret, id) = (token(), format!("a{}", token()));
    hub.su()
        .user_tokens
        .insert(secret.clone(), (name.clone(), id.clone()));
    json_response(
        StatusCode::CREATED,
        &json!({ "token": secret, "id": id, "user": name, "note": "hubsoak journey" }),
    )
}

async fn revoke_token(
    State(hub): State<MockHub>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Resp {
    if let Err(resp) = authorize_api(&hub, &headers) {
        return resp;
    }
    let mut su = hub.su();
    let before = su.user_tokens.len();
    su.user_tokens.retain(|_, (u, i)| !(*u == name && *i == id));
    if su.user_tokens.len() == before {
        return api_error(StatusCode::NOT_FOUND, "No such token");
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default()
}

async fn not_running() -> Resp {
    html(
        StatusCode::FAILED_DEPENDENCY,
        "Your server is not running. Would you like to start it?",
    )
}

/// Splits `/user/{name}/{rest}` into the server name and the path on that server.
fn split_server(rest: &str) -> (String, String) {
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if ["api", "files", "oauth_callback", ""].contains(&first) {
        (String::new(), rest.to_string())
    } else {
        (first.to_string(), tail.to_string())
    }
}

async fn single_user(
    State(hub): State<MockHub>,
    Path((name, rest)): Path<(String, String)>,
    req: Request,
) -> Resp {
    let (server, path) = split_server(&rest);
    let base = if server.is_empty() {
        format!("/user/{name}/")
    } else {
        format!("/user/{name}/{server}/")
    };
    if hub.phase(&name, &server) != Some(Phase::Running) {
        return redirect(&format!("/hub{}", req.uri()), &[]);
    }
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    let headers = parts.headers.clone();
    if path == "api" || path == "api/" {
        return json_response(StatusCode::OK, &json!({ "version": "2.21.1" }));
    }
    if path == "oauth_callback" {
        return oauth_callback(&hub, &name, &base, parts.uri.query().unwrap_or(""));
    }
    // Who is asking: the token (no xsrf needed), or the server's cookie (xsrf needed on
    // anything but GET).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("token "));
    let by_token = given.is_some_and(|t| {
        t == hub.inner.cfg.token
            || hub
                .su()
                .user_tokens
                .get(t)
                .is_some_and(|(owner, _)| *owner == name)
    });
    if !by_token {
        let session = cookie(&headers, &format!("jupyterhub-user-{name}"))
            .and_then(|c| hub.su().server_sessions.get(&c).cloned());
        let Some((owner, server_xsrf)) = session.filter(|(owner, _)| *owner == name) else {
            if path.starts_with("api/") || method != Method::GET {
                return api_error(StatusCode::FORBIDDEN, "Forbidden");
            }
            let state = token();
            hub.su()
                .states
                .insert(state.clone(), (name.clone(), parts.uri.to_string()));
            let client = if server.is_empty() {
                format!("jupyterhub-user-{name}")
            } else {
                format!("jupyterhub-user-{name}-{server}")
            };
            return redirect(
                &format!(
                    "/hub/api/oauth2/authorize?client_id={client}&redirect_uri={base}oauth_callback&response_type=code&state={state}"
                ),
                &[],
            );
        };
        let _ = owner;
        if method != Method::GET {
            let given = headers.get("X-XSRFToken").and_then(|v| v.to_str().ok());
            if given != Some(server_xsrf.as_str()) {
                return api_error(
                    StatusCode::FORBIDDEN,
                    "XSRF cookie does not match POST argument",
                );
            }
        }
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["api", "kernels"]) => {
            let body = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let wanted: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            start_kernel(&hub, &name, &server, wanted["name"].as_str().unwrap_or(""))
        }
        (Method::DELETE, ["api", "kernels", id]) => {
            let mut su = hub.su();
            match su.kernels.get(*id) {
                Some((u, s)) if *u == name && *s == server => {
                    su.kernels.remove(*id);
                    su.kernels_deleted += 1;
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Body::empty())
                        .unwrap_or_default()
                }
                _ => api_error(StatusCode::NOT_FOUND, "Kernel does not exist"),
            }
        }
        (Method::GET, ["api", "kernels", id, "channels"]) => {
            let known =
                matches!(hub.su().kernels.get(*id), Some((u, s)) if *u == name && *s == server);
            if !known {
                return api_error(StatusCode::NOT_FOUND, "Kernel does not exist");
            }
            match WebSocketUpgrade::from_request_parts(&mut parts, &hub).await {
                Ok(ws) => {
                    let silent = hub.faults().kernel_silent;
                    ws.on_upgrade(move |socket| super::kernel::kernel_socket(socket, silent))
                }
                Err(rejection) => axum::response::IntoResponse::into_response(rejection),
            }
        }
        (Method::GET, ["files", ..]) => html(StatusCode::NOT_FOUND, "404 : Not Found"),
        _ => api_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn oauth_callback(hub: &MockHub, name: &str, base: &str, query: &str) -> Resp {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut su = hub.su();
    let code_user = q.get("code").and_then(|c| su.codes.remove(c));
    let state = q.get("state").and_then(|s| su.states.remove(s));
    match (code_user, state) {
        (Some(user), Some((state_user, next))) if user == name && state_user == name => {
            let (session, xsrf) = (token(), token());
            su.server_sessions
                .insert(session.clone(), (user, xsrf.clone()));
            redirect(
                &next,
                &[
                    format!("jupyterhub-user-{name}={session}; Path={base}; HttpOnly"),
                    format!("_xsrf={xsrf}; Path={base}"),
                ],
            )
        }
        _ => api_error(StatusCode::FORBIDDEN, "OAuth state or code does not match"),
    }
}

/// `POST …/api/kernels` for kernel `kernel` ("" is the default): the servers have only
/// `python3`; another name is jupyter_server's unhandled NoSuchKernel, a 500.
fn start_kernel(hub: &MockHub, name: &str, server: &str, kernel: &str) -> Resp {
    if let Some(status) = hub.faults().kernel_start_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return api_error(status, "Kernel start failed (simulated)");
    }
    if !kernel.is_empty() && kernel != "python3" {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "Unhandled error");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut su = hub.su();
    // Kernels die with their server: forget those of servers no longer running.
    let running: Vec<String> = su
        .kernels
        .iter()
        .filter(|(_, (u, s))| hub.phase(u, s) == Some(Phase::Running))
        .map(|(k, _)| k.clone())
        .collect();
    su.kernels.retain(|k, _| running.contains(k));
    su.kernels
        .insert(id.clone(), (name.to_string(), server.to_string()));
    su.kernels_started += 1;
    json_response(
        StatusCode::CREATED,
        &json!({
            "id": id,
            "name": "python3",
            "last_activity": Utc::now().to_rfc3339(),
            "execution_state": "starting",
            "connections": 0,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_split_into_server_and_rest() {
        assert_eq!(
            split_server("api/kernels"),
            ("".into(), "api/kernels".into())
        );
        assert_eq!(
            split_server("lab2/api/kernels"),
            ("lab2".into(), "api/kernels".into())
        );
        assert_eq!(
            split_server("oauth_callback"),
            ("".into(), "oauth_callback".into())
        );
    }
}
