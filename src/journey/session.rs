//! A simulated user's HTTP side: getting credentials — none (token mode), a token of the
//! user's own made through the API (user-token mode), or the hub's login form and then
//! the server's OAuth handshake (form mode) — and the server's kernels API, with a token
//! or with cookies plus the *server's* `_xsrf`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use super::{AuthMode, JourneyError, JourneySettings, KernelChannel};
use crate::hub::{http_builder, AuthHeader, ClientBuildError, Minted, Token};

/// Redirects followed at most in the OAuth handshake.
const MAX_REDIRECTS: usize = 10;

/// Makes user sessions; one per soak or `simulate` run.
pub struct Journeys {
    settings: Arc<JourneySettings>,
    /// Token mode: one client for every user.
    shared: reqwest::Client,
    /// hubsoak's own token (shared with the API client, so a rotated token reaches both).
    auth: AuthHeader,
    /// The hub API, for user tokens.
    api_url: Url,
    ca_file: Option<std::path::PathBuf>,
    request_timeout: Duration,
    /// Where the next session starts in the notebooks: in turn, so they are all run.
    next_notebook: AtomicUsize,
}

impl std::fmt::Debug for Journeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journeys")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Journeys {
    pub fn new(
        settings: JourneySettings,
        api_url: &Url,
        auth: &AuthHeader,
        ca_file: Option<&std::path::Path>,
        request_timeout: Duration,
    ) -> Result<Journeys, ClientBuildError> {
        let shared = http_builder(ca_file, request_timeout)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        Ok(Journeys {
            settings: Arc::new(settings),
            shared,
            auth: auth.clone(),
            api_url: api_url.clone(),
            ca_file: ca_file.map(Into::into),
            request_timeout,
            next_notebook: AtomicUsize::new(0),
        })
    }

    pub fn settings(&self) -> &JourneySettings {
        &self.settings
    }

    /// The notebook a new session starts with (its index, to be taken modulo their count).
    pub fn first_notebook(&self) -> usize {
        self.next_notebook.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `open` logs in (and so is a timed `login` step).
    pub fn logs_in(&self) -> bool {
        !matches!(self.settings.auth, AuthMode::Token)
    }

    /// `user`'s way to `server_name`. In form mode this logs in through the hub's form
    /// first (its own cookie jar); in user-token mode it makes the user a token; in token
    /// mode nothing is sent. `close` undoes what `open` made.
    pub async fn open(&self, user: &str, server_name: &str) -> Result<UserSession, JourneyError> {
        let server_url = server_url(&self.settings.public_url, user, server_name);
        let session = UserSession {
            name: user.to_string(),
            http: self.shared.clone(),
            auth: Some(self.auth.get()),
            jar: None,
            server_url,
            xsrf: None,
            pending_kernel: None,
            revoke: None,
            _minted: None,
        };
        let password = match &self.settings.auth {
            AuthMode::Token => return Ok(session),
            AuthMode::UserToken => return self.with_user_token(session).await,
            AuthMode::Form { password } => password,
        };
        let jar = Arc::new(Jar::default());
        let http = http_builder(self.ca_file.as_deref(), self.request_timeout)
            .map_err(|e| JourneyError::Connection(e.to_string()))?
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .map_err(|e| JourneyError::Connection(e.to_string()))?;
        let login = self
            .settings
            .public_url
            .join("hub/login")
            .map_err(|e| JourneyError::Protocol(e.to_string()))?;
        let page = http
            .get(login.clone())
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        if !page.status().is_success() {
            return Err(JourneyError::Status(page.status().as_u16()));
        }
        let xsrf = cookie(&jar, &login, "_xsrf")
            .ok_or_else(|| JourneyError::Protocol("the login page set no _xsrf cookie".into()))?;
        let password = password.as_ref().map(Token::expose).unwrap_or("");
        let answer = http
            .post(login)
            .form(&[("username", user), ("password", password), ("_xsrf", &xsrf)])
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        // Success is a redirect away from the form (never followed: the hub's next page
        // may be /hub/spawn, which would start a server); a failure renders the form again.
        let location = answer
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match answer.status() {
            s if s.is_redirection() && !location.contains("/hub/login") => {}
            StatusCode::OK | StatusCode::FORBIDDEN => return Err(JourneyError::LoginRejected),
            s if s.is_redirection() => return Err(JourneyError::LoginRejected),
            s => return Err(JourneyError::Status(s.as_u16())),
        }
        Ok(UserSession {
            http,
            auth: None,
            jar: Some(jar),
            ..session
        })
    }

    /// `POST /users/{name}/tokens`: a short-lived token with the user's own permissions
    /// (JupyterHub's default for a new token), revoked by `close`.
    async fn with_user_token(&self, session: UserSession) -> Result<UserSession, JourneyError> {
        let mut tokens = self.api_url.clone();
        if let Ok(mut path) = tokens.path_segments_mut() {
            path.pop_if_empty()
                .extend(["users", session.name.as_str(), "tokens"]);
        }
        let answer = self
            .shared
            .post(tokens.clone())
            .header(AUTHORIZATION, self.auth.get())
            .json(&json!({ "note": "hubsoak journey", "expires_in": USER_TOKEN_LIFETIME }))
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        if answer.status() != StatusCode::CREATED {
            return Err(JourneyError::Status(answer.status().as_u16()));
        }
        let made: Value = answer.json().await.map_err(JourneyError::from_reqwest)?;
        let (Some(secret), Some(id)) = (made["token"].as_str(), made["id"].as_str()) else {
            return Err(JourneyError::Protocol(
                "a token answer without token or id".into(),
            ));
        };
        let minted = Minted::new(secret);
        let mut auth = HeaderValue::from_str(&format!("token {secret}"))
            .map_err(|_| JourneyError::Protocol("the new token is not a header value".into()))?;
        auth.set_sensitive(true);
        let mut revoke = tokens;
        if let Ok(mut path) = revoke.path_segments_mut() {
            path.push(id);
        }
        Ok(UserSession {
            auth: Some(auth),
            revoke: Some((revoke, self.auth.get())),
            _minted: Some(minted),
            ..session
        })
    }
}

/// Seconds a user token lives if its session never gets to revoke it.
const USER_TOKEN_LIFETIME: u64 = 4 * 3600;

/// `{public}/user/{name}/` or `{public}/user/{name}/{server}/`.
pub fn server_url(public: &Url, user: &str, server_name: &str) -> Url {
    let mut url = public.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push("user").push(user);
        if !server_name.is_empty() {
            path.push(server_name);
        }
        path.push("");
    }
    url
}

/// The value of cookie `name` that the jar would send to `url`.
fn cookie(jar: &Jar, url: &Url, name: &str) -> Option<String> {
    let header = jar.cookies(url)?;
    let header = header.to_str().ok()?;
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// One user's access to one server.
pub struct UserSession {
    name: String,
    http: reqwest::Client,
    /// Token mode: the Authorization header.
    auth: Option<HeaderValue>,
    /// Form mode: the cookies.
    jar: Option<Arc<Jar>>,
    server_url: Url,
    /// Form mode: the server's own `_xsrf`, once its OAuth handshake is done.
    xsrf: Option<String>,
    /// A kernel started but not yet handed over (its websocket did not open).
    pending_kernel: Option<String>,
    /// User-token mode: where to revoke the user's token, with hubsoak's header.
    revoke: Option<(Url, HeaderValue)>,
    /// User-token mode: the user's token, redacted from every text while it lives.
    _minted: Option<Minted>,
}

impl UserSession {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn server_url(&self) -> &Url {
        &self.server_url
    }

    /// The headers that authenticate a request to the server.
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(xsrf) = self
            .xsrf
            .as_deref()
            .and_then(|x| HeaderValue::from_str(x).ok())
        {
            headers.insert("X-XSRFToken", xsrf);
        }
        headers
    }

    fn url(&self, tail: &str) -> Result<Url, JourneyError> {
        self.server_url
            .join(tail)
            .map_err(|e| JourneyError::Protocol(e.to_string()))
    }

    /// Form mode: a page of the server that needs login sends us through the hub's OAuth
    /// (authorize → callback, which sets the server's cookie and its own `_xsrf`).
    async fn authorize(&mut self) -> Result<(), JourneyError> {
        let Some(jar) = self.jar.clone() else {
            return Ok(());
        };
        if self.xsrf.is_some() {
            return Ok(());
        }
        // Any authenticated page of jupyter_server; a missing file answers 404 after login.
        let mut url = self.url("files/hubsoak-login")?;
        for _ in 0..MAX_REDIRECTS {
            let answer = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(JourneyError::from_reqwest)?;
            if !answer.status().is_redirection() {
                break;
            }
            let Some(next) = answer
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
            else {
                return Err(JourneyError::Protocol("a redirect without Location".into()));
            };
            // Sent back to the login form: the hub session is gone.
            if next.path().ends_with("/hub/login") {
                return Err(JourneyError::LoginRejected);
            }
            url = next;
        }
        self.xsrf = cookie(&jar, &self.server_url, "_xsrf");
        if self.xsrf.is_none() {
            return Err(JourneyError::Protocol(
                "the server set no _xsrf cookie after login".into(),
            ));
        }
        Ok(())
    }

    /// Starts a kernel and opens its websocket: the kernel's id and channel.
    pub async fn start_kernel(
        &mut self,
        kernel_name: &str,
    ) -> Result<(String, KernelChannel), JourneyError> {
        self.authorize().await?;
        let body = if kernel_name.is_empty() {
            json!({})
        } else {
            json!({ "name": kernel_name })
        };
        let answer = self
            .http
            .post(self.url("api/kernels")?)
            .headers(self.headers())
            .json(&body)
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        if answer.status() != StatusCode::CREATED {
            return Err(JourneyError::Status(answer.status().as_u16()));
        }
        let kernel: Value = answer.json().await.map_err(JourneyError::from_reqwest)?;
        let Some(id) = kernel["id"].as_str().map(str::to_string) else {
            return Err(JourneyError::Protocol("a kernel without an id".into()));
        };
        self.pending_kernel = Some(id.clone());
        let channels = self.url(&format!("api/kernels/{id}/channels"))?;
        let channel = KernelChannel::connect(&self.http, channels, self.headers()).await?;
        self.pending_kernel = None;
        Ok((id, channel))
    }

    /// The id of a kernel whose start failed after the kernel was made.
    pub fn take_pending_kernel(&mut self) -> Option<String> {
        self.pending_kernel.take()
    }

    /// Revokes what `open` made (user-token mode: the token), best effort: a token left
    /// behind expires by itself.
    pub async fn close(self, timeout: Duration) {
        let Some((url, auth)) = self.revoke else {
            return;
        };
        let sent = self
            .http
            .delete(url)
            .header(AUTHORIZATION, auth)
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(a) if a.status() == StatusCode::NO_CONTENT => {}
            Ok(a) => tracing::warn!(
                user = self.name,
                status = a.status().as_u16(),
                "revoking the user's token failed"
            ),
            Err(e) => {
                tracing::warn!(user = self.name, error = %e, "revoking the user's token failed")
            }
        }
    }

    /// `DELETE …/api/kernels/{id}`.
    pub async fn stop_kernel(&self, id: &str) -> Result<(), JourneyError> {
        let answer = self
            .http
            .delete(self.url(&format!("api/kernels/{id}"))?)
            .headers(self.headers())
            .send()
            .await
            .map_err(JourneyError::from_reqwest)?;
        match answer.status() {
            StatusCode::NO_CONTENT => Ok(()),
            s => Err(JourneyError::Status(s.as_u16())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_keep_the_hub_base_path() {
        let public = Url::parse("https://hub.example.org/jupyter/").unwrap();
        assert_eq!(
            server_url(&public, "hubsoak-1", "").as_str(),
            "https://hub.example.org/jupyter/user/hubsoak-1/"
        );
        assert_eq!(
            server_url(&public, "hubsoak-1", "lab2").as_str(),
            "https://hub.example.org/jupyter/user/hubsoak-1/lab2/"
        );
    }

    #[test]
    fn the_server_xsrf_is_the_one_for_its_path() {
        let jar = Jar::default();
        let hub = Url::parse("http://127.0.0.1:8000/hub/login").unwrap();
        jar.add_cookie_str("_xsrf=hubvalue; Path=/hub/", &hub);
        let server = Url::parse("http://127.0.0.1:8000/user/a/").unwrap();
        jar.add_cookie_str("_xsrf=servervalue; Path=/user/a/", &server);
        assert_eq!(
            cookie(&jar, &server, "_xsrf").as_deref(),
            Some("servervalue")
        );
        assert_eq!(cookie(&jar, &hub, "_xsrf").as_deref(), Some("hubvalue"));
    }
}
