//! `klar text`: the consent texts at a terminal — set, list, show, diff, and
//! a preview of the mail and the page in files a person opens; and `klar
//! template`, the tenant's own mail and page templates.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{TextCommand, open_store};
use crate::app::consent_texts::{self, TextError, Written};
use crate::store::texts::ConsentText;
use crate::store::{tenants, texts};

pub(super) fn run(db: &crate::store::Location, command: TextCommand) -> Result<ExitCode> {
    match command {
        TextCommand::Set {
            tenant,
            purpose,
            file,
            language,
            author,
            message,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let source = read(&file)?;
            let mut store = open_store(db)?;
            let written = Written {
                purpose: &purpose,
                language: &language,
                source: &source,
                author: &author,
                message: &message,
            };
            match consent_texts::set(&mut store, &tenant, &written, now) {
                Ok(text) => {
                    show!(
                        "{tenant} {purpose} ({}): version {} set, SHA-256 {}; requests from now on use it",
                        text.language,
                        text.version,
                        text.sha256
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => refused(&file, &source, err),
            }
        }
        TextCommand::List {
            tenant,
            purpose,
            json,
        } => {
            let store = open_store(db)?;
            tenants::require(store.connection(), &tenant)?;
            let all = texts::list(store.connection(), &tenant, purpose.as_deref())?;
            if json {
                let wire: Vec<crate::wire::ConsentText> = crate::wire::list(all);
                show!("{}", serde_json::to_string_pretty(&wire)?);
                return Ok(ExitCode::SUCCESS);
            }
            let tz = tenants::require(store.connection(), &tenant)?.timezone;
            show!(
                "{:<16} {:<4} {:>7}  {:<12} {:<20} {:<16} message",
                "purpose",
                "lang",
                "version",
                "sha256",
                "set",
                "author"
            );
            for (i, t) in all.iter().enumerate() {
                let current = all
                    .get(i + 1)
                    .is_none_or(|n| n.purpose != t.purpose || n.language != t.language);
                show!(
                    "{:<16} {:<4} {:>7}{} {:<12} {:<20} {:<16} {}",
                    t.purpose,
                    t.language,
                    t.version,
                    if current { "*" } else { " " },
                    t.sha256.get(..12).unwrap_or_default(),
                    crate::times::local_secs(t.created_at, tz),
                    t.author.as_deref().unwrap_or("(klar standard)"),
                    t.message.as_deref().unwrap_or("")
                );
            }
            show!(
                "{} version(s); * marks the current one of each purpose and language",
                all.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        TextCommand::Show {
            tenant,
            purpose,
            version,
            language,
        } => {
            let store = open_store(db)?;
            let text = consent_texts::version(
                store.connection(),
                &tenant,
                (&purpose, &language),
                version,
            )?;
            show!(
                "{tenant} {purpose} ({}) version {} · SHA-256 {} · {}",
                text.language,
                text.version,
                text.sha256,
                match (&text.author, &text.message) {
                    (Some(a), Some(m)) => format!("{a}: {m}"),
                    _ => "klar's standard text".to_owned(),
                }
            );
            show!("\n{}", text.body);
            Ok(ExitCode::SUCCESS)
        }
        TextCommand::Diff {
            tenant,
            purpose,
            from,
            to,
            language,
        } => {
            let store = open_store(db)?;
            let key = (purpose.as_str(), language.as_str());
            let a = consent_texts::version(store.connection(), &tenant, key, Some(from))?;
            let b = consent_texts::version(store.connection(), &tenant, key, Some(to))?;
            print!("{}", super::printable_text(&consent_texts::diff(&a, &b)));
            Ok(ExitCode::SUCCESS)
        }
        TextCommand::Preview {
            tenant,
            purpose,
            file,
            language,
            output,
            now,
        } => preview(
            db,
            (&tenant, &purpose),
            file.as_deref(),
            &language,
            &output,
            &now,
        ),
    }
}

fn read(file: &Path) -> Result<String> {
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: the text is not valid UTF-8 (byte {}); save it as UTF-8",
            file.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// A text refused: its mistakes drawn at their line and column, exit 1;
/// anything else is an error of the command (exit 2).
fn refused(file: &Path, source: &str, err: TextError) -> Result<ExitCode> {
    match err {
        TextError::Mistakes(found) => {
            let color = std::io::stdout().is_terminal();
            print!(
                "{}",
                crate::diagnostics::render(&file.display().to_string(), source, &found, color)
            );
            show!(
                "{}: not set: the text has {} mistake(s)",
                file.display(),
                found.len()
            );
            Ok(ExitCode::from(1))
        }
        other => Err(other.into()),
    }
}

/// A contact to show the texts to.
const SAMPLE: (&str, &str) = ("Erika", "Mustermann");

/// `klar text preview`: the mail and the page for the purpose's current
/// texts (or `file` as the next version in `language`), in German and
/// English, with a sample contact and a link that leads nowhere.
fn preview(
    db: &crate::store::Location,
    (tenant, purpose): (&str, &str),
    file: Option<&Path>,
    language: &str,
    output: &Path,
    now: &super::NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let store = open_store(db)?;
    let conn = store.connection();
    let tenant_row = tenants::require(conn, tenant)?;
    let description = tenants::purposes(conn, tenant)?
        .into_iter()
        .find(|(id, _)| id == purpose)
        .map(|(_, d)| d)
        .with_context(|| format!("tenant {tenant} has no purpose {purpose}"))?;
    let draft = match file {
        Some(file) => {
            let source = read(file)?;
            if let Err(err) = consent_texts::check(&source) {
                return refused(file, &source, err);
            }
            let body = consent_texts::fill(
                &source,
                &tenant_row.name,
                &tenants::purpose_in(purpose, &description, language),
            )?;
            Some(ConsentText {
                source: Some(source),
                ..ConsentText::unsaved((purpose, language), 0, body, now.timestamp())
            })
        }
        None => None,
    };
    std::fs::create_dir_all(output)
        .with_context(|| format!("failed to create {}", output.display()))?;
    let expires = Some(now.with_timezone(&tenant_row.timezone) + chrono::Duration::days(30));
    let own_mail = crate::delivery::mail::OwnTemplates::of(conn, tenant)?;
    let own_page = crate::store::templates::get(conn, tenant, "response.html")?.map(|t| t.source);
    let link = "https://klar.example/r/0000preview0000";
    let mut written = Vec::new();
    for page_language in texts::LANGUAGES {
        // The text a contact of this language reads: the draft where it is
        // in this language, else the current one (klar's standard text
        // where the purpose has none yet).
        let text = match &draft {
            Some(d) if texts::language_for(&d.language) == page_language => d.clone(),
            _ => match texts::current(conn, tenant, purpose, page_language)? {
                Some(text) => text,
                None => standard_preview(
                    &tenant_row,
                    purpose,
                    &description,
                    page_language,
                    now.timestamp(),
                ),
            },
        };
        let purpose_name = tenants::purpose_in(purpose, &description, page_language);
        let shown = [(purpose_name.clone(), text.clone())];
        let mail = crate::delivery::mail::render(&crate::delivery::mail::Draft {
            language: page_language,
            name: &format!("{} {}", SAMPLE.0, SAMPLE.1),
            company: &tenant_row.name,
            legal: &crate::app::settings::footer(&tenant_row, page_language),
            own: &own_mail,
            texts: &shown,
            link,
            manage_link: "https://klar.example/p/0000preview0000",
            expires,
            reminder: false,
        })?;
        let items = [crate::serve::page::Item::new(purpose, purpose_name, &text)];
        let page = crate::serve::page::response_html(
            page_language,
            (&tenant_row, own_page.as_deref()),
            &items,
            ("0000preview0000", "preview"),
        )?;
        for (name, content) in [
            (
                format!("mail-{page_language}.txt"),
                format!("Subject: {}\n\n{}", mail.subject, mail.plain),
            ),
            (format!("mail-{page_language}.html"), mail.html),
            (format!("page-{page_language}.html"), page),
        ] {
            let path = output.join(name);
            std::fs::write(&path, content)
                .with_context(|| format!("failed to write {}", path.display()))?;
            written.push(path);
        }
    }
    for path in &written {
        show!("{}", path.display());
    }
    show!(
        "{} file(s) for {tenant} {purpose}; the link in them leads nowhere",
        written.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// klar's standard text as it would be written on the first request.
fn standard_preview(
    tenant: &tenants::Tenant,
    purpose: &str,
    description: &str,
    language: &str,
    now: i64,
) -> ConsentText {
    let body = texts::standard_text(
        language,
        &tenant.name,
        &tenants::purpose_in(purpose, description, language),
    );
    ConsentText::unsaved((purpose, language), 1, body, now)
}

/// `klar template set|list|show|reset`
pub(super) fn template(
    db: &crate::store::Location,
    command: super::TemplateCommand,
) -> Result<ExitCode> {
    use super::TemplateCommand;
    use crate::app::templates::{self, TemplateError};
    match command {
        TemplateCommand::Set {
            tenant,
            name,
            file,
            author,
            message,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let source = read(&file)?;
            let mut store = open_store(db)?;
            let written = templates::Written {
                name: &name,
                source: &source,
                author: &author,
                message: &message,
            };
            match templates::set(&mut store, &tenant, &written, now) {
                Ok(t) => {
                    show!(
                        "{tenant}: {name} set (SHA-256 {}); mails and pages use it from now on",
                        t.sha256
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(TemplateError::Mistakes(found)) => {
                    let color = std::io::stdout().is_terminal();
                    let shown = file.display().to_string();
                    print!(
                        "{}",
                        crate::diagnostics::render(&shown, &source, &found, color)
                    );
                    show!(
                        "{shown}: not set: the template has {} mistake(s)",
                        found.len()
                    );
                    Ok(ExitCode::from(1))
                }
                Err(TemplateError::LinkMissing(why)) => {
                    show!("{}: not set: {why}", file.display());
                    Ok(ExitCode::from(1))
                }
                Err(err) => Err(err.into()),
            }
        }
        TemplateCommand::List { tenant } => {
            let store = open_store(db)?;
            let tz = tenants::require(store.connection(), &tenant)?.timezone;
            let own = crate::store::templates::list(store.connection(), &tenant)?;
            for name in templates::NAMES {
                match own.iter().find(|t| t.name == name) {
                    Some(t) => show!(
                        "{name:<17} own   {} {} by {}: {}",
                        t.sha256.get(..12).unwrap_or_default(),
                        crate::times::local_secs(t.created_at, tz),
                        t.author,
                        t.message
                    ),
                    None => show!("{name:<17} klar's"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Show { tenant, name } => {
            let store = open_store(db)?;
            tenants::require(store.connection(), &tenant)?;
            let builtin =
                templates::builtin(&name).ok_or(TemplateError::UnknownName(name.clone()))?;
            match crate::store::templates::get(store.connection(), &tenant, &name)? {
                Some(t) => print!("{}", super::printable_text(&t.source)),
                None => print!("{builtin}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Reset { tenant, name, now } => {
            let now = now.resolve()?.timestamp();
            let mut store = open_store(db)?;
            templates::reset(&mut store, &tenant, &name, now)?;
            show!("{tenant}: {name} is klar's again");
            Ok(ExitCode::SUCCESS)
        }
    }
}
