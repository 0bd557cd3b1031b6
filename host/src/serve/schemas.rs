//! Schemas of the OpenAPI document that derive cannot say: the exact rules
//! the server enforces on ids, text fields, addresses and event bodies, so
//! that what the document allows the server takes, and what it forbids the
//! server refuses (schemathesis checks both ways). Each rule's home is named;
//! change both together.

use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};

use crate::app::contacts::limits;

/// No control characters (Unicode category Cc), as `char::is_control`.
const TEXT: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters, and at least one character that is not blank.
const LINE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

fn string(min: usize, max: usize, pattern: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

fn nullable(schema: Schema) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(schema)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// A contact id (`app::contacts::id_problem`).
pub fn contact_id() -> Schema {
    string(
        1,
        limits::ID,
        r"^[^\s/\\\u0000-\u001f\u007f-\u009f]([^/\\\u0000-\u001f\u007f-\u009f]*[^\s/\\\u0000-\u001f\u007f-\u009f])?$",
    )
}

/// A first or last name (`app::contacts::field_problems`).
pub fn name() -> Schema {
    string(0, limits::NAME, TEXT)
}

/// The responsible person: not blank.
pub fn owner() -> Schema {
    string(1, limits::OWNER, LINE)
}

/// Where the contact came from.
pub fn source() -> RefOr<Schema> {
    nullable(string(0, limits::SOURCE, TEXT))
}

/// An e-mail address as `app::import::plausible_email` takes it, or empty.
pub fn email() -> RefOr<Schema> {
    const C: &str = r"@\s\u0000-\u001f\u007f-\u009f";
    let pattern = format!("^$|^[^{C}]+@[^.{C}][^{C}]*\\.[^{C}]*[^.{C}]$");
    nullable(string(0, limits::EMAIL, &pattern))
}

/// A phone number as `app::import::plausible_phone` takes it, or empty.
pub fn phone() -> RefOr<Schema> {
    nullable(string(
        0,
        limits::PHONE,
        r"^$|^[ +\-()/.]*([0-9][ +\-()/.]*){5,}$",
    ))
}

/// A language tag, or empty for the default.
pub fn language() -> RefOr<Schema> {
    nullable(string(0, limits::LANGUAGE, r"^[A-Za-z0-9-]*$"))
}

/// A day (`2026-11-30`) or an RFC 3339 time (`app::import::parse_time`).
pub fn date_or_time() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// Free attributes: at most 100, names of 1 to 64 characters, values of at
/// most 1,000 (tabs and line breaks allowed).
pub fn attributes() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(limits::ATTRIBUTES))
        .property_names(Some(string(1, limits::ATTRIBUTE_NAME, TEXT)))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(string(
            0,
            limits::ATTRIBUTE_VALUE,
            r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$",
        )))))
        .into()
}

/// A one-line text of a person (an author, a key's name, who placed a
/// hold): not blank, no control characters, at most `max` characters.
pub fn line(max: usize) -> Schema {
    string(1, max, LINE)
}

/// [`line`] for the lengths the API uses.
pub fn line_100() -> Schema {
    line(100)
}
pub fn line_500() -> Schema {
    line(500)
}

/// A consent text's author and message (`app::text::one_line`).
pub fn text_author() -> Schema {
    line(crate::app::text::MAX_WHO)
}
pub fn text_message() -> Schema {
    line(crate::app::text::MAX_WHY)
}

/// A consent text as written (`app::consent_texts::check`): its mistakes
/// (blank, a control character, a placeholder that does not exist) are 422.
pub fn consent_text() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::app::consent_texts::MAX_CHARS))
        .into()
}

/// A text's language (`app::consent_texts`): two or three lower-case letters.
pub fn text_language() -> Schema {
    string(2, 3, r"^[a-z]{2,3}$")
}

/// [`line`] of at most 200 characters, or null (`app::settings`).
pub fn nullable_line_200() -> RefOr<Schema> {
    nullable(line(200))
}

/// An optional one-line setting of `app::settings`: blank clears it.
fn optional_text(max: usize) -> RefOr<Schema> {
    nullable(string(0, max, TEXT))
}
pub fn optional_line_200() -> RefOr<Schema> {
    optional_text(crate::app::text::MAX_WHO)
}
pub fn optional_line_1000() -> RefOr<Schema> {
    optional_text(crate::app::text::MAX_WHY)
}
pub fn optional_owner() -> RefOr<Schema> {
    optional_text(limits::OWNER)
}

/// A postal address (`app::settings`): lines, no other control characters.
pub fn address() -> RefOr<Schema> {
    nullable(string(
        0,
        crate::app::settings::MAX_ADDRESS,
        r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
    ))
}

/// A web address for the imprint or privacy notice (`app::settings`), or
/// the empty string to clear it.
pub fn optional_web_address() -> RefOr<Schema> {
    nullable(string(
        0,
        crate::app::settings::MAX_URL,
        r#"^(|https?://[^\s"<>\u0000-\u001f\u007f-\u009f]+)$"#,
    ))
}

/// A tenant's region (`engine::calendar::REGIONS`), or "" to clear it.
pub fn region() -> RefOr<Schema> {
    let mut codes: Vec<&str> = crate::engine::calendar::REGIONS
        .iter()
        .map(|(c, _)| *c)
        .collect();
    codes.push("");
    nullable(one_of_words(&codes))
}

/// Closure days (`engine::calendar::closure_day`): `MM-DD` (02-29 too: in
/// the years that have it) or `YYYY-MM-DD` (the pattern leaves out 29
/// February of leap years, which klar takes as well).
pub fn closure_days() -> RefOr<Schema> {
    use utoipa::openapi::schema::ArrayBuilder;
    const LONG: &str =
        "(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)";
    let pattern = format!(
        "^(({LONG}|02-(0[1-9]|1[0-9]|2[0-9]))|[0-9]{{4}}-({LONG}|02-(0[1-9]|1[0-9]|2[0-8])))$"
    );
    nullable(
        ArrayBuilder::new()
            .items(RefOr::T(string(5, 10, &pattern)))
            .into(),
    )
}

/// An IANA time zone that klar knows.
pub fn timezone() -> RefOr<Schema> {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    nullable(one_of_words(&names))
}

/// A language tag (`app::settings`): de, en, de-AT.
pub fn locale() -> RefOr<Schema> {
    nullable(string(2, 35, r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"))
}

/// A webhook URL's form (`delivery::target::parse`); where it points is
/// checked when it is set (422 if not public).
pub fn webhook_url() -> Schema {
    string(
        1,
        crate::delivery::target::MAX_URL,
        // RFC 3986's characters only, as `http::Uri` takes them; a port
        // from 0 to 65535.
        r"^https?://[A-Za-z0-9.-]+(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?(/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:@/%?-]*)?$",
    )
}

/// One of these words.
pub fn one_of_words(words: &[&str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .into()
}

/// The eleven states of a case.
pub fn state_names() -> Schema {
    one_of_words(&crate::plugin::State::ALL.map(|s| s.as_str()))
}

/// How strict a purpose is (`store::tenants::Enforcement`).
pub fn enforcement_names() -> Schema {
    one_of_words(&crate::store::tenants::Enforcement::ALL.map(|e| e.as_str()))
}

/// How strict a purpose is, or null to leave it.
pub fn optional_enforcement() -> RefOr<Schema> {
    nullable(enforcement_names())
}

/// The three bands.
pub fn band_names() -> Schema {
    one_of_words(&crate::plugin::Band::ALL.map(|b| b.as_str()))
}

/// The ids of a campaign check (`app::campaign::check`): 1 to 100,000
/// strings of at most as many characters as a contact id; any other string
/// is simply not a known contact.
pub fn contact_list() -> Schema {
    use utoipa::openapi::schema::ArrayBuilder;
    ArrayBuilder::new()
        .items(RefOr::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(limits::ID))
                .into(),
        ))
        .min_items(Some(1))
        .max_items(Some(crate::app::campaign::MAX_IDS))
        .into()
}

/// The reason codes of a campaign check.
pub fn reason_codes() -> Schema {
    one_of_words(&crate::app::campaign::Reason::ALL.map(|r| r.code()))
}

/// A purpose id (`store::tenants`), for a query or an event.
pub fn purpose() -> Schema {
    string(1, 64, r"^[a-z0-9-]+$")
}

/// A purpose id, or null for `contact-data`.
pub fn optional_purpose() -> RefOr<Schema> {
    nullable(purpose())
}

/// An event body: each type with the fields it needs (`api::events::event_of`).
pub fn event() -> RefOr<Schema> {
    let purpose = || -> RefOr<Schema> { nullable(purpose()) };
    let kind = |words: &[&str]| one_of_words(words);
    let plain = ObjectBuilder::new()
        .property(
            "type",
            kind(&["withdraw", "object", "used", "data-changed"]),
        )
        .property("purpose", purpose())
        .required("type")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let bounce = ObjectBuilder::new()
        .property("type", kind(&["bounce"]))
        .property("purpose", purpose())
        .property("channel", nullable(string(1, 50, LINE)))
        .required("type")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let hold = ObjectBuilder::new()
        .property("type", kind(&["hold-on", "hold-off"]))
        .property("purpose", purpose())
        .property("by", line(200))
        .property("reason", line(1_000))
        .required("type")
        .required("by")
        .required("reason")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    OneOfBuilder::new()
        .item(plain)
        .item(bounce)
        .item(hold)
        .description(Some(
            "`withdraw`, `object` (Art. 21 GDPR), `used`, `data-changed`; `bounce` (with the `channel` that \
             bounced, default `email`); `hold-on`/`hold-off` with `by` and `reason`. \
             `purpose`: only this purpose (default: all; `used` and `bounce`: `contact-data`).",
        ))
        .into()
}
