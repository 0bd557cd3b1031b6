//! A tenant's own mail and page templates (minijinja), which an integrator
//! sets in place of klar's: `mail.txt`, `mail.html` (the request),
//! `confirmation.txt`, `confirmation.html` (the confirmation of an answer)
//! and `response.html`.
//! A template is checked before it is stored: it must compile, and render
//! for a sample contact with the real renderer; a mistake is named with its
//! line and column. Each change is audited with the template's SHA-256.

use crate::plugin::Diagnostic;
use crate::store::audit::{self, Entry};
use crate::store::templates::{self, Template};
use crate::store::{Store, StoreError, tenants};

/// The templates a tenant may replace, with klar's own.
pub const NAMES: [&str; 5] = [
    "mail.txt",
    "mail.html",
    "confirmation.txt",
    "confirmation.html",
    "response.html",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "there is no template {0:?}: use mail.txt, mail.html, confirmation.txt, confirmation.html or response.html"
    )]
    UnknownName(String),
    #[error("the template has {} mistake(s)", .0.len())]
    Mistakes(Vec<Diagnostic>),
    #[error("{0}")]
    Field(String),
    /// A mail template that does not show a link every mail must carry.
    #[error("{0}")]
    LinkMissing(String),
    #[error("tenant {tenant} has no template {name} of its own; klar's applies")]
    NoneOfItsOwn { tenant: String, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::Error> for TemplateError {
    fn from(err: crate::store::Error) -> TemplateError {
        TemplateError::Store(err.into())
    }
}

impl From<tenants::TenantError> for TemplateError {
    fn from(err: tenants::TenantError) -> TemplateError {
        match err {
            tenants::TenantError::Sql(err) => TemplateError::Store(err.into()),
            other => TemplateError::Field(other.to_string()),
        }
    }
}

/// The links of the sample mail a template is checked with.
const SAMPLE_LINK: &str = "https://klar.example/r/0000";
const SAMPLE_PERSONAL_LINK: &str = "https://klar.example/p/0000";

/// klar's own template of this name.
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "mail.txt" => Some(crate::delivery::mail::MAIL_TXT),
        "mail.html" => Some(crate::delivery::mail::MAIL_HTML),
        "confirmation.txt" => Some(crate::delivery::confirmation::CONFIRMATION_TXT),
        "confirmation.html" => Some(crate::delivery::confirmation::CONFIRMATION_HTML),
        "response.html" => Some(crate::serve::page::RESPONSE_HTML),
        _ => None,
    }
}

/// A minijinja error as a diagnostic at its line and column (1-based,
/// in characters).
fn diagnostic(source: &str, err: &minijinja::Error) -> Diagnostic {
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let (line, column) = match err.range() {
        Some(range) => {
            let before = &source[..range.start.min(source.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }
        None => (err.line().unwrap_or(0), 0),
    };
    Diagnostic::error(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
        message,
    )
}

/// Checks a template: it compiles, and the real renderer renders it for a
/// sample contact in German and English.
pub fn check(tenant: &tenants::Tenant, name: &str, source: &str) -> Result<(), TemplateError> {
    if builtin(name).is_none() {
        return Err(TemplateError::UnknownName(name.to_owned()));
    }
    let mut env = minijinja::Environment::new();
    env.add_template(name, source)
        .map_err(|e| TemplateError::Mistakes(vec![diagnostic(source, &e)]))?;
    let sample = crate::store::texts::ConsentText::unsaved(
        ("newsletter", "de"),
        1,
        "Ich willige ein.".to_owned(),
        0,
    );
    for language in ["de", "en"] {
        let rendered = match name {
            "response.html" => {
                let items = [crate::serve::page::Item::new(
                    "newsletter",
                    "Newsletter".to_owned(),
                    &sample,
                )];
                crate::serve::page::response_html(
                    language,
                    (tenant, Some(source)),
                    &items,
                    ("0000", "0000"),
                )
                .map(|_| Vec::new())
            }
            "confirmation.txt" | "confirmation.html" => {
                let own = crate::delivery::mail::OwnTemplates {
                    txt: (name == "confirmation.txt").then(|| source.to_owned()),
                    html: (name == "confirmation.html").then(|| source.to_owned()),
                };
                let answers = [(
                    "Newsletter".to_owned(),
                    "Sie haben eingewilligt.".to_owned(),
                )];
                crate::delivery::confirmation::render(
                    &crate::delivery::confirmation::Confirmation {
                        language,
                        name: "Erika Mustermann",
                        company: &tenant.name,
                        legal: &super::settings::footer(tenant, language),
                        answers: &answers,
                        manage_link: SAMPLE_PERSONAL_LINK,
                    },
                    &own,
                )
                .map(|(plain, html)| {
                    let body = if name == "confirmation.txt" {
                        plain
                    } else {
                        html
                    };
                    [SAMPLE_PERSONAL_LINK]
                        .into_iter()
                        .filter(|link| !body.contains(link))
                        .collect::<Vec<_>>()
                })
            }
            _ => {
                let own = crate::delivery::mail::OwnTemplates {
                    txt: (name == "mail.txt").then(|| source.to_owned()),
                    html: (name == "mail.html").then(|| source.to_owned()),
                };
                crate::delivery::mail::render(&crate::delivery::mail::Draft {
                    language,
                    name: "Erika Mustermann",
                    company: &tenant.name,
                    legal: &super::settings::footer(tenant, language),
                    texts: &[("Newsletter".to_owned(), sample.clone())],
                    link: SAMPLE_LINK,
                    manage_link: SAMPLE_PERSONAL_LINK,
                    expires: None,
                    reminder: false,
                    own: &own,
                })
                .map(|mail| {
                    let body = if name == "mail.txt" {
                        mail.plain
                    } else {
                        mail.html
                    };
                    [SAMPLE_LINK, SAMPLE_PERSONAL_LINK]
                        .into_iter()
                        .filter(|link| !body.contains(link))
                        .collect::<Vec<_>>()
                })
            }
        };
        let missing =
            rendered.map_err(|e| TemplateError::Mistakes(vec![diagnostic(source, &e)]))?;
        // A request mail without its link cannot be answered, and one
        // without the personal link takes the contact's way back away.
        if let Some(link) = missing.first() {
            let variable = if *link == SAMPLE_LINK {
                "{{ link }}"
            } else {
                "{{ manage_link }}"
            };
            let why = if name.starts_with("confirmation") {
                "a confirmation carries the contact's personal link, their way back"
            } else {
                "every mail carries the response link and the contact's personal link"
            };
            return Err(TemplateError::LinkMissing(format!(
                "{name} must show {variable}: {why} ({language}: {link} is not in the sample mail)"
            )));
        }
    }
    Ok(())
}

/// What `set` is given.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub author: &'a str,
    pub message: &'a str,
}

/// Sets the tenant's own template of a name, checked, audited as
/// `template-set`.
pub fn set(
    store: &mut Store,
    tenant: &str,
    written: &Written<'_>,
    now: i64,
) -> Result<Template, TemplateError> {
    super::text::authored(written.author, written.message).map_err(TemplateError::Field)?;
    let tenant_row = tenants::require(store.connection(), tenant)?;
    check(&tenant_row, written.name, written.source)?;
    let template = Template {
        name: written.name.to_owned(),
        source: written.source.to_owned(),
        sha256: crate::sha256_hex(written.source.as_bytes()),
        author: written.author.to_owned(),
        message: written.message.to_owned(),
        created_at: now,
    };
    store.write(|tx| {
        templates::set(tx, tenant, &template)?;
        audit::append(
            tx,
            tenant,
            Entry::tenant(
                now,
                "template-set",
                &serde_json::json!({
                    "name": template.name,
                    "sha256": template.sha256,
                    "author": template.author,
                    "message": template.message,
                }),
            ),
        )?;
        Ok::<_, TemplateError>(())
    })?;
    Ok(template)
}

/// Removes the tenant's own template of a name (klar's applies again),
/// audited as `template-reset`.
pub fn reset(store: &mut Store, tenant: &str, name: &str, now: i64) -> Result<(), TemplateError> {
    if builtin(name).is_none() {
        return Err(TemplateError::UnknownName(name.to_owned()));
    }
    store.write(|tx| {
        tenants::require(tx, tenant)?;
        if !templates::remove(tx, tenant, name)? {
            return Err(TemplateError::NoneOfItsOwn {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
            });
        }
        audit::append(
            tx,
            tenant,
            Entry::tenant(now, "template-reset", &serde_json::json!({ "name": name })),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> tenants::Tenant {
        tenants::Tenant {
            id: "acme".into(),
            name: "ACME GmbH".into(),
            timezone: chrono_tz::Europe::Berlin,
            locale: "de".into(),
            default_owner: None,
            legal: Default::default(),
            region: None,
            closure_days: Vec::new(),
        }
    }

    #[test]
    fn a_confirmation_template_must_show_the_personal_link() {
        let Err(TemplateError::LinkMissing(why)) = check(
            &acme(),
            "confirmation.txt",
            "{{ greeting }}\n{% for a in answers %}{{ a.purpose }}: {{ a.what }}\n{% endfor %}",
        ) else {
            panic!("a confirmation without the personal link was accepted");
        };
        assert!(
            why.starts_with("confirmation.txt must show {{ manage_link }}"),
            "{why}"
        );
        check(
            &acme(),
            "confirmation.html",
            "<p>{{ greeting }}</p><a href=\"{{ manage_link }}\">{{ button }}</a>",
        )
        .expect("a confirmation with the link");
    }

    #[test]
    fn the_built_in_templates_pass_their_own_check() {
        for name in NAMES {
            check(&acme(), name, builtin(name).unwrap_or_default()).expect(name);
        }
    }

    #[test]
    fn a_broken_template_is_named_by_line_and_column() {
        let source = "Hallo {{ greeting }}\n{% for item in texts %}{{ item.text }}\n";
        let Err(TemplateError::Mistakes(found)) = check(&acme(), "mail.txt", source) else {
            panic!("refused");
        };
        assert_eq!(found[0].line, 2, "{found:?}");
        assert!(found[0].message.contains("syntax error"), "{found:?}");
        let Err(TemplateError::Mistakes(found)) =
            check(&acme(), "mail.txt", "{{ greeting|no_such_filter }}")
        else {
            panic!("refused");
        };
        assert_eq!((found[0].line, found[0].column), (1, 13), "{found:?}");
        assert!(matches!(
            check(&acme(), "footer.txt", "x"),
            Err(TemplateError::UnknownName(_))
        ));
    }
}
