//! The simulated kernel behind a kernel's websocket: the Jupyter message protocol
//! (busy, execute_input, stream/execute_result/error, execute_reply, idle) around a tiny
//! language — integer arithmetic, `print`, `import`, `time.sleep` — with IPython-like
//! errors and coloured tracebacks, so journeys and notebooks have something real to run.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use chrono::Utc;
use serde_json::{json, Value};

/// One message of the Jupyter protocol, a reply to `parent`.
fn message(parent: &Value, channel: &str, msg_type: &str, content: Value) -> Message {
    let msg = json!({
        "header": {
            "msg_id": uuid::Uuid::new_v4().simple().to_string(),
            "msg_type": msg_type,
            "session": "mock-kernel",
            "username": "mock",
            "version": "5.3",
            "date": Utc::now().to_rfc3339(),
        },
        "parent_header": parent,
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    });
    Message::Text(msg.to_string().into())
}

/// A kernel that runs the simulated language of `run`: what a cell printed and its
/// value go out as they would from IPython, an error with an IPython-like (coloured)
/// traceback, and `time.sleep` keeps the kernel busy.
pub(super) async fn kernel_socket(mut socket: WebSocket, silent: bool) {
    let mut count = 0u64;
    while let Some(Ok(frame)) = socket.recv().await {
        let Message::Text(text) = frame else { continue };
        let Ok(request) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if request["header"]["msg_type"] != "execute_request" || silent {
            continue;
        }
        count += 1;
        let parent = &request["header"];
        let code = request["content"]["code"].as_str().unwrap_or("");
        let mut out = vec![
            message(
                parent,
                "iopub",
                "status",
                json!({ "execution_state": "busy" }),
            ),
            message(
                parent,
                "iopub",
                "execute_input",
                json!({ "code": code, "execution_count": count }),
            ),
        ];
        let (effects, error) = run(code);
        for effect in effects {
            match effect {
                Effect::Sleep(d) => {
                    // What is due so far goes out first, as a real kernel's would.
                    for m in out.drain(..) {
                        if socket.send(m).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(d).await;
                }
                Effect::Printed(text) => out.push(message(
                    parent,
                    "iopub",
                    "stream",
                    json!({ "name": "stdout", "text": format!("{text}\n") }),
                )),
                Effect::Result(value) => out.push(message(
                    parent,
                    "iopub",
                    "execute_result",
                    json!({ "data": { "text/plain": value }, "metadata": {}, "execution_count": count }),
                )),
            }
        }
        let status = match error {
            None => "ok",
            Some((ename, evalue)) => {
                let red = |s: &str| format!("\u{1b}[0;31m{s}\u{1b}[0m");
                let traceback = [
                    red(&"-".repeat(75)),
                    format!(
                        "{}                         Traceback (most recent call last)",
                        red(ename)
                    ),
                    format!(
                        "Cell \u{1b}[0;32mIn[{count}], line 1\u{1b}[0m\n----> 1 {}",
                        code.lines().last().unwrap_or("")
                    ),
                    format!("{}: {evalue}", red(ename)),
                ];
                out.push(message(
                    parent,
                    "iopub",
                    "error",
                    json!({ "ename": ename, "evalue": evalue, "traceback": traceback }),
                ));
                "error"
            }
        };
        out.push(message(
            parent,
            "shell",
            "execute_reply",
            json!({ "status": status, "execution_count": count }),
        ));
        out.push(message(
            parent,
            "iopub",
            "status",
            json!({ "execution_state": "idle" }),
        ));
        for m in out {
            if socket.send(m).await.is_err() {
                return;
            }
        }
    }
}

/// What a line of simulated code does.
#[derive(Debug, PartialEq)]
enum Effect {
    /// The last line's value, as IPython shows it.
    Result(String),
    Printed(String),
    Sleep(Duration),
}

/// An error as the kernel names it: (`ename`, `evalue`).
type KernelError = (&'static str, &'static str);

/// The simulated kernel's whole language, line by line: blank lines and comments,
/// `import …`, `time.sleep(seconds)`, `print(…)` of a string or of integer arithmetic,
/// and integer arithmetic (`+ - * / //`, parentheses) whose value, on the last line, is
/// the cell's result. Anything else is a NameError. Runs until the first error.
fn run(code: &str) -> (Vec<Effect>, Option<KernelError>) {
    let lines: Vec<&str> = code
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut effects = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        match statement(line, last) {
            Ok(Some(effect)) => effects.push(effect),
            Ok(None) => {}
            Err(e) => return (effects, Some(e)),
        }
    }
    (effects, None)
}

fn statement(line: &str, last: bool) -> Result<Option<Effect>, KernelError> {
    if line.starts_with("import ") || line.starts_with("from ") {
        return Ok(None);
    }
    let call = |name: &str| {
        line.strip_prefix(name)
            .and_then(|c| c.strip_prefix('('))
            .and_then(|c| c.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(arg) = call("time.sleep").or_else(|| call("sleep")) {
        let secs: f64 = arg
            .parse()
            .map_err(|_| ("TypeError", "a number is required"))?;
        return Ok(Some(Effect::Sleep(Duration::from_secs_f64(
            secs.clamp(0.0, 3600.0),
        ))));
    }
    if let Some(inner) = call("print") {
        for q in ['"', '\''] {
            if let Some(s) = inner.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
                return Ok(Some(Effect::Printed(s.to_string())));
            }
        }
        return arithmetic(inner).map(|v| Some(Effect::Printed(v.to_string())));
    }
    let value = arithmetic(line)?;
    Ok(last.then(|| Effect::Result(value.to_string())))
}

const SYNTAX: KernelError = ("SyntaxError", "invalid syntax");
const OVERFLOW: KernelError = ("OverflowError", "integer overflow");
const NAME: KernelError = ("NameError", "the simulated kernel does not know this name");

/// Integer `+ - * / //` with parentheses (`/` of integers that do not divide is the
/// simulator's one liberty: it rounds down).
fn arithmetic(expr: &str) -> Result<i64, KernelError> {
    fn term(tokens: &[String], i: &mut usize) -> Result<i64, KernelError> {
        let mut v = factor(tokens, i)?;
        while let Some(op) = tokens
            .get(*i)
            .filter(|t| *t == "*" || *t == "//" || *t == "/")
        {
            let op = op.clone();
            *i += 1;
            let r = factor(tokens, i)?;
            v = match op.as_str() {
                "*" => v.checked_mul(r).ok_or(OVERFLOW)?,
                "/" => v
                    .checked_div_euclid(r)
                    .ok_or(("ZeroDivisionError", "division by zero"))?,
                _ => v
                    .checked_div_euclid(r)
                    .ok_or(("ZeroDivisionError", "integer division or modulo by zero"))?,
            };
        }
        Ok(v)
    }
    fn factor(tokens: &[String], i: &mut usize) -> Result<i64, KernelError> {
        let t = tokens.get(*i).ok_or(SYNTAX)?.clone();
        *i += 1;
        if t == "(" {
            let v = sum(tokens, i)?;
            if tokens.get(*i).map(String::as_str) != Some(")") {
                return Err(SYNTAX);
            }
            *i += 1;
            Ok(v)
        } else if t == "-" {
            Ok(-factor(tokens, i)?)
        } else {
            t.parse().map_err(|_| NAME)
        }
    }
    fn sum(tokens: &[String], i: &mut usize) -> Result<i64, KernelError> {
        let mut v = term(tokens, i)?;
        while let Some(op) = tokens.get(*i).filter(|t| *t == "+" || *t == "-") {
            let plus = op == "+";
            *i += 1;
            let r = term(tokens, i)?;
            v = if plus {
                v.checked_add(r)
            } else {
                v.checked_sub(r)
            }
            .ok_or(OVERFLOW)?;
        }
        Ok(v)
    }
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '0'..='9' => {
                let mut n = c.to_string();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                tokens.push(n);
            }
            '/' if chars.peek() == Some(&'/') => {
                chars.next();
                tokens.push("//".into());
            }
            '+' | '-' | '*' | '/' | '(' | ')' => tokens.push(c.to_string()),
            _ => return Err(NAME),
        }
    }
    let mut i = 0;
    let v = sum(&tokens, &mut i)?;
    if i != tokens.len() {
        return Err(SYNTAX);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_kernel_does_arithmetic_and_print() {
        let value = |code: &str| match run(code) {
            (mut effects, None) => effects.pop(),
            (_, Some(e)) => panic!("{code}: {e:?}"),
        };
        let error = |code: &str| run(code).1.map(|(ename, _)| ename);
        assert_eq!(value("5 * 4"), Some(Effect::Result("20".into())));
        assert_eq!(value("(1 + 2) * -3"), Some(Effect::Result("-9".into())));
        assert_eq!(value("7 // 2"), Some(Effect::Result("3".into())));
        assert_eq!(value("print('hi')"), Some(Effect::Printed("hi".into())));
        assert_eq!(value("print(2 + 2)"), Some(Effect::Printed("4".into())));
        assert_eq!(value("import os"), None);
        assert_eq!(error("os.getcwd()"), Some("NameError"));
        assert_eq!(error("1 // 0"), Some("ZeroDivisionError"));
        assert_eq!(error("(1"), Some("SyntaxError"));
    }

    #[test]
    fn a_cell_runs_line_by_line_until_its_first_error() {
        let cell = "import time\n# think\ntime.sleep(0.5)\nprint('before')\n1/0\nprint('after')";
        let (effects, error) = run(cell);
        assert_eq!(
            effects,
            [
                Effect::Sleep(Duration::from_millis(500)),
                Effect::Printed("before".into())
            ]
        );
        assert_eq!(error, Some(("ZeroDivisionError", "division by zero")));
        // Only the last line's value is the cell's result.
        assert_eq!(run("2 + 2\n3 * 3").0, [Effect::Result("9".into())]);
    }
}
