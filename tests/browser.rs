//! The response page in a real browser: Debian's headless Chromium, driven
//! through chromedriver, opens the personal link from a real mail (sent by
//! `klar serve` to a real SMTP server), and a contact agrees or refuses. The
//! answer must arrive with the browser's own user agent in its evidence.
//!
//! Screenshots of the pages (German and English) are kept as test artefacts
//! in `target/test-artefacts/`.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::server::Server;
use support::smtp::{SmtpSink, link_in, mail_to, parse, serve_with_smtp};

/// chromedriver on a free port, and a browser session through it.
struct Browser {
    driver: Child,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Browser {
    /// `accept_language` is what the browser asks pages for (`--lang`).
    fn start(accept_language: &str) -> Browser {
        let driver_bin =
            std::env::var("KLAR_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let chromium =
            std::env::var("KLAR_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        assert!(
            std::path::Path::new(&chromium).exists(),
            "the browser tests need Chromium at {chromium}: `apt-get install chromium \
             chromium-driver`, as scripts/test does (or set KLAR_TEST_CHROMIUM)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{driver_bin} starts (chromium-driver): {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                // This machine has no network beyond loopback: keep Chromium
                // from trying to reach Google's services.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=900,1000",
                    format!("--lang={accept_language}"),
                ],
                "prefs": { "intl.accept_languages": accept_language },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = runtime.block_on(async {
            loop {
                match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    Err(err) => {
                        assert!(
                            Instant::now() < deadline,
                            "no browser session through chromedriver: {err}"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Browser {
            driver,
            client,
            runtime,
        }
    }

    fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client.goto(url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element's text. A click that submits a form returns before the
    /// next page is in; an element of the old page is then stale, so this
    /// asks again for a while.
    fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .runtime
                .block_on(async { self.client.find(Locator::Css(css)).await?.text().await });
            match found {
                Ok(text) => return text,
                Err(e) if Instant::now() > deadline => panic!("text of {css}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until the page's heading is `expected` (after a click or a key).
    fn heading_becomes(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.text("h1") != expected {
            assert!(
                Instant::now() < deadline,
                "the heading stayed {:?}, not {expected:?}: {}",
                self.text("h1"),
                self.text("main")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        self.runtime
            .block_on(async { self.client.find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Presses keys in the focused element (`\u{e004}` is Tab, `\u{e007}` Enter).
    fn keys(&self, keys: &str) {
        self.runtime
            .block_on(async { self.client.active_element().await?.send_keys(keys).await })
            .unwrap_or_else(|e| panic!("keys: {e}"));
    }

    fn script(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client.execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("script: {e}"))
    }

    /// Saves a screenshot as a test artefact; returns its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client.screenshot())
            .expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map(|p| p.join("test-artefacts"))
            .expect("target/");
        std::fs::create_dir_all(&dir).expect("the artefacts folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The link in the text part of the mail klar sent to `address`.
fn link_from_mail(sink: &SmtpSink, server: &Server, address: &str) -> String {
    let mails = sink.wait_for(2);
    let mail = parse(mail_to(&mails, address));
    link_in(&mail.body_text(0).expect("a text part"), &server.url)
}

/// WCAG 2 contrast of every text on the page against its background; the
/// lowest ratio and where it is.
const CONTRAST: &str = r#"
const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
const lum = c => {
  const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = el => {
  for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
  }
  return [255, 255, 255];
};
let worst = { ratio: 99, what: "" };
for (const el of document.querySelectorAll("body *")) {
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst.ratio) worst = { ratio, what: el.tagName + " " + el.className };
}
return worst;
"#;

/// What a screen reader and a keyboard user need: a language, named
/// buttons in a labelled group, a language switch that says its language.
const STRUCTURE: &str = r#"
const buttons = [...document.querySelectorAll("form button")];
return {
  lang: document.documentElement.lang,
  title: document.title,
  legend: (document.querySelector("form fieldset legend") || {}).textContent || "",
  buttons: buttons.map(b => ({ name: b.textContent.trim(), type: b.type, tabIndex: b.tabIndex })),
  switch_hreflang: (document.querySelector("nav a[hreflang]") || {}).hreflang || "",
  scripts: document.scripts.length,
  h1: document.querySelectorAll("h1").length,
};
"#;

fn use_of(server: &Server, contact: &str) -> Value {
    server
        .call(
            "GET",
            &format!("/v1/contacts/{contact}/use"),
            Some(&server.keys.0),
            None,
        )
        .1
}

#[test]
fn a_contact_agrees_in_german_in_a_real_browser_from_a_real_mail() {
    let sink = SmtpSink::start();
    let server = serve_with_smtp(&sink.url(), &[]);
    let link = link_from_mail(&sink, &server, "j.gross@example.de");
    let browser = Browser::start("de-DE");

    browser.goto(&link);
    assert_eq!(
        browser.text("h1"),
        "Dürfen wir Ihre Daten weiter verwenden?"
    );
    assert!(browser.text("main").contains("Müller & Söhne GmbH"));
    assert!(
        browser
            .text("#consent-text")
            .starts_with("Ich bin damit einverstanden")
    );
    let structure = browser.script(STRUCTURE);
    assert_eq!(structure["lang"], "de");
    assert_eq!(structure["legend"], "Ihre Antwort");
    assert_eq!(
        structure["buttons"],
        json!([
            {"name": "Ja, ich bin einverstanden", "type": "submit", "tabIndex": 0},
            {"name": "Nein, ich bin nicht einverstanden", "type": "submit", "tabIndex": 0},
        ])
    );
    assert_eq!(structure["switch_hreflang"], "en");
    assert_eq!(
        (structure["scripts"].as_i64(), structure["h1"].as_i64()),
        (Some(0), Some(1))
    );
    let contrast = browser.script(CONTRAST);
    assert!(
        contrast["ratio"].as_f64().is_some_and(|r| r >= 4.5),
        "WCAG AA needs 4.5:1 for text: {contrast}"
    );
    browser.screenshot("response-page-de");
    let user_agent = browser.script("return navigator.userAgent");

    browser.click("button.yes");
    browser.heading_becomes("Vielen Dank");
    browser.screenshot("confirmation-de");

    let answer = use_of(&server, "C1");
    assert_eq!(
        (answer["state"].as_str(), answer["may_use"].as_bool()),
        (Some("consented"), Some(true)),
        "{answer}"
    );
    let (_, bundle) = server.call(
        "GET",
        "/v1/contacts/C1/evidence",
        Some(&server.keys.0),
        None,
    );
    let response = &bundle["responses"][0]["detail"];
    assert_eq!(response["answer"], "accept", "{bundle:#}");
    assert_eq!(response["user_agent"], user_agent);
    assert_eq!(response["ip"], "127.0.0.1");
    assert_eq!(response["language"], "de");

    // The link worked once; opened again it reveals nothing.
    browser.goto(&link);
    browser.heading_becomes("Dieser Link ist nicht gültig");
    assert!(!browser.text("main").contains("Groß"));
}

#[test]
fn a_contact_switches_to_english_and_refuses_with_the_keyboard_alone() {
    let sink = SmtpSink::start();
    let server = serve_with_smtp(&sink.url(), &[]);
    let link = link_from_mail(&sink, &server, "zoe.hart@example.com");
    // The browser prefers German; the contact switches to English on the page.
    let browser = Browser::start("de-DE");
    browser.goto(&link);
    assert_eq!(
        browser.text("h1"),
        "Dürfen wir Ihre Daten weiter verwenden?"
    );
    browser.click("nav a[hreflang=en]");
    browser.heading_becomes("May we keep using your data?");
    assert_eq!(browser.script(STRUCTURE)["lang"], "en");
    let contrast = browser.script(CONTRAST);
    assert!(
        contrast["ratio"].as_f64().is_some_and(|r| r >= 4.5),
        "{contrast}"
    );
    browser.screenshot("response-page-en");

    // Tab to the first button, Tab to the second, Enter: no mouse needed.
    browser.keys("\u{e004}\u{e004}");
    let focused = browser.script("return document.activeElement.textContent.trim()");
    assert_eq!(focused, "No, I do not agree");
    browser.keys("\u{e007}");
    browser.heading_becomes("Your answer is recorded");
    browser.screenshot("confirmation-en");

    let answer = use_of(&server, "C2");
    assert_eq!(answer["may_use"], false, "{answer}");
    // The default policy starts the cleanup after a refusal at once.
    assert_eq!(answer["band"], "removed", "{answer}");
    let (_, bundle) = server.call(
        "GET",
        "/v1/contacts/C2/evidence",
        Some(&server.keys.0),
        None,
    );
    let response = &bundle["responses"][0]["detail"];
    assert_eq!(response["answer"], "refuse", "{bundle:#}");
    assert!(
        response["user_agent"]
            .as_str()
            .is_some_and(|ua| ua.contains("Chrome/")),
        "{response}"
    );
}
