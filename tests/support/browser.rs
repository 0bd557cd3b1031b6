//! Debian's headless Chromium, driven through chromedriver (plain HTTP on
//! loopback): pages, clicks, keys, scripts, screenshots and PDFs kept as
//! test artefacts in `target/test-artefacts/`, and an axe-core audit.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// chromedriver on a free port, and a browser session through it.
pub struct Browser {
    driver: Child,
    pub client: Client,
    pub runtime: tokio::runtime::Runtime,
}

impl Browser {
    /// `accept_language` is what the browser asks pages for (`--lang`).
    pub fn start(accept_language: &str) -> Browser {
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

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client.goto(url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element's text. A click that submits a form returns before the
    /// next page is in; an element of the old page is then stale, so this
    /// asks again for a while.
    pub fn text(&self, css: &str) -> String {
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
    pub fn heading_becomes(&self, expected: &str) {
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

    pub fn click(&self, css: &str) {
        self.runtime
            .block_on(async { self.client.find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Presses keys in the focused element (`\u{e004}` is Tab, `\u{e007}` Enter).
    pub fn keys(&self, keys: &str) {
        self.runtime
            .block_on(async { self.client.active_element().await?.send_keys(keys).await })
            .unwrap_or_else(|e| panic!("keys: {e}"));
    }

    pub fn script(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client.execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("script: {e}"))
    }

    /// Saves a screenshot as a test artefact; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client.screenshot())
            .expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = Browser::artefacts().join(format!("{name}.png"));
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

impl Browser {
    /// The folder of the test artefacts (`target/test-artefacts/`).
    pub fn artefacts() -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map(|p| p.join("test-artefacts"))
            .expect("target/");
        std::fs::create_dir_all(&dir).expect("the artefacts folder");
        dir
    }

    /// Types `text` into the element (after clearing it).
    pub fn type_into(&self, css: &str, text: &str) {
        self.runtime
            .block_on(async {
                let field = self.client.find(Locator::Css(css)).await?;
                field.clear().await?;
                field.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The current page's address.
    pub fn url(&self) -> String {
        self.runtime
            .block_on(self.client.current_url())
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Prints the page to PDF (the browser's own print) and keeps it as an
    /// artefact; returns the bytes.
    pub fn pdf(&self, name: &str) -> Vec<u8> {
        let pdf = self
            .runtime
            .block_on(
                self.client
                    .print(fantoccini::wd::PrintConfiguration::default()),
            )
            .unwrap_or_else(|e| panic!("print {name}: {e}"));
        let path = Browser::artefacts().join(format!("{name}.pdf"));
        std::fs::write(&path, &pdf).expect("write the PDF");
        println!("pdf: {}", path.display());
        pdf
    }

    /// Runs axe-core on the page; returns its serious and critical
    /// violations (rule id and the elements), which a page must not have.
    /// axe-core comes from the npm registry (scripts/test installs it into
    /// `target/axe`; `KLAR_TEST_AXE` names another `axe.min.js`).
    pub fn axe(&self) -> Vec<String> {
        let path = std::env::var("KLAR_TEST_AXE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/axe/node_modules/axe-core/axe.min.js")
            });
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core at {}: {e}; scripts/test installs it (npm install axe-core into target/axe)",
                path.display()
            )
        });
        self.script(&format!("{source}\n;return null;"));
        let found = self
            .runtime
            .block_on(self.client.execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(r => done({
                   passes: r.passes.length,
                   violations: r.violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => v.impact + ' ' + v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))
                 })).catch(e => done({ passes: 0, violations: ['axe failed: ' + e] }));",
                Vec::new(),
            ))
            .unwrap_or_else(|e| panic!("axe: {e}"));
        // axe checked something: a page where no rule passed means it did not run.
        assert!(
            found["passes"].as_u64().unwrap_or(0) > 0,
            "axe-core ran no rule: {found}"
        );
        found["violations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe answered {found}")])
    }
}
