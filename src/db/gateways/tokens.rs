//! A gateway's tokens are encrypted bound to the gateway they belong to: the associated data
//! of each ciphertext is its purpose, the gateway's id and the address the token is sent to
//! (host, port, TLS). A token moved to another row, or a row whose address was changed outside
//! the daemon (plain SQL on a backup or on the database), no longer decrypts, so the daemon
//! never sends it there: the tampered gateway is loaded without it, and a WARN names it.
//! Before, the master key decrypted a token wherever it was, and a backup whose host and port
//! were edited had the daemon send the device token, then the shared token, to the attacker's
//! address on its next start.
//!
//! An address changed through the API carries the token with it (re-sealed in the same
//! transaction): that move is the operator's. Tokens stored before the binding (purpose `v1`)
//! are sealed to their row once, at start, under the setup lock (`bind_legacy_tokens`); from
//! then on only bound tokens are read.

use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use super::super::schema::{gateways, secrets};
use super::super::{DbConn, DbError, Store, unix_now};
use super::GatewayRow;
use crate::secrets::{Cipher, purpose};
use gateway_supervisor_actors::model::GatewayId;

/// Which of a gateway's two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    /// The shared gateway token an operator sets.
    Gateway,
    /// The device token the gateway issued to this supervisor.
    Device,
}

impl Token {
    fn purpose(self) -> &'static [u8] {
        match self {
            Token::Gateway => purpose::GATEWAY_TOKEN_BOUND,
            Token::Device => purpose::DEVICE_TOKEN_BOUND,
        }
    }

    fn legacy_purpose(self) -> &'static [u8] {
        match self {
            Token::Gateway => purpose::GATEWAY_TOKEN,
            Token::Device => purpose::DEVICE_TOKEN,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Token::Gateway => "token",
            Token::Device => "device token",
        }
    }
}

/// Where a token is sent: the row's identity and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Address<'a> {
    pub id: GatewayId,
    pub host: &'a str,
    pub port: i32,
    pub tls: bool,
}

impl<'a> Address<'a> {
    pub fn of(row: &'a GatewayRow) -> Self {
        Address {
            id: row.id,
            host: &row.host,
            port: row.port,
            tls: row.tls,
        }
    }
}

/// The associated data: purpose, id, host, port and TLS, each length-delimited (no two
/// addresses give the same bytes).
fn binding(token: Token, to: &Address<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + to.host.len());
    for part in [
        token.purpose(),
        to.id.to_string().as_bytes(),
        to.host.as_bytes(),
        to.port.to_string().as_bytes(),
        if to.tls { b"wss" } else { b"ws" },
    ] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

/// A token sealed to `to`.
pub(super) fn seal(
    cipher: &Cipher,
    token: Token,
    to: &Address<'_>,
    plain: &SecretString,
) -> Result<Vec<u8>, crate::secrets::SecretsError> {
    cipher.encrypt(plain.expose_secret().as_bytes(), &binding(token, to))
}

/// The token sealed to `to`, or `None` when it was sealed to another gateway or address (or
/// is damaged): never sent anywhere it was not stored for.
pub(super) fn open(
    cipher: &Cipher,
    token: Token,
    to: &Address<'_>,
    blob: &[u8],
) -> Option<SecretString> {
    match cipher
        .decrypt(blob, &binding(token, to))
        .ok()
        .and_then(|plain| String::from_utf8(plain).ok())
    {
        Some(plain) => Some(SecretString::from(plain)),
        None => {
            tracing::warn!(
                gateway_id = to.id.get(),
                "the gateway's stored {} does not belong to its address (its host, port or TLS \
                 was changed outside the daemon, or the value is damaged): it is not used; set \
                 it again through the API",
                token.name()
            );
            None
        }
    }
}

/// `blob`, sealed to `from`, sealed to `to` instead (an address changed through the API);
/// `None` when it did not open.
pub(super) fn reseal(
    cipher: &Cipher,
    token: Token,
    from: &Address<'_>,
    to: &Address<'_>,
    blob: &[u8],
) -> Option<Vec<u8>> {
    let plain = open(cipher, token, from, blob)?;
    seal(cipher, token, to, &plain).ok()
}

/// Marks a database whose tokens are all sealed to their gateways.
const BOUND_MARK: &str = "gateway_tokens_bound";

impl Store {
    /// Seals the tokens stored before the binding to their gateways, once per database (run
    /// under the setup lock). A token that opens neither way is dropped, with a WARN.
    pub fn bind_legacy_tokens(&self) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        let cipher = &self.cipher;
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let marked = secrets::table
                .find(BOUND_MARK)
                .select(secrets::name)
                .first::<String>(c)
                .optional()?
                .is_some();
            if marked {
                return Ok(0);
            }
            let rows: Vec<GatewayRow> = gateways::table.select(GatewayRow::as_select()).load(c)?;
            let mut sealed = 0;
            for row in &rows {
                let to = Address::of(row);
                let token = legacy(cipher, Token::Gateway, &to, row.token_enc.as_deref())?;
                let device = legacy(cipher, Token::Device, &to, row.device_token_enc.as_deref())?;
                sealed += usize::from(token.is_some()) + usize::from(device.is_some());
                write(c, row.id, token, device)?;
            }
            let now = unix_now();
            diesel::insert_into(secrets::table)
                .values((
                    secrets::name.eq(BOUND_MARK),
                    secrets::value.eq(b"v2".to_vec()),
                    secrets::created_at.eq(now),
                    secrets::updated_at.eq(now),
                ))
                .execute(c)?;
            Ok(sealed)
        })
    }
}

/// A legacy blob sealed to `to`; one already bound stays as it is.
fn legacy(
    cipher: &Cipher,
    token: Token,
    to: &Address<'_>,
    blob: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, DbError> {
    let Some(blob) = blob else { return Ok(None) };
    if let Ok(plain) = cipher.decrypt(blob, token.legacy_purpose()) {
        let plain = SecretString::from(
            String::from_utf8(plain)
                .map_err(|_| DbError::Damaged("a stored gateway token is not UTF-8"))?,
        );
        return Ok(Some(seal(cipher, token, to, &plain)?));
    }
    Ok(open(cipher, token, to, blob).map(|_| blob.to_vec()))
}

fn write(
    c: &mut DbConn,
    id: GatewayId,
    token: Option<Vec<u8>>,
    device: Option<Vec<u8>>,
) -> QueryResult<usize> {
    diesel::update(gateways::table.find(id))
        .set((
            gateways::token_enc.eq(token),
            gateways::device_token_enc.eq(device),
        ))
        .execute(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new(&secrecy::SecretBox::new(Box::new([3; 32])))
    }

    fn at(id: i64, host: &str, port: i32, tls: bool) -> Address<'_> {
        Address {
            id: GatewayId(id),
            host,
            port,
            tls,
        }
    }

    #[test]
    fn a_token_opens_only_for_the_gateway_and_address_it_was_sealed_to() {
        let c = cipher();
        let secret = SecretString::from("tok-secret".to_owned());
        let home = at(7, "gw.internal", 18789, true);
        let blob = seal(&c, Token::Gateway, &home, &secret).unwrap();
        let opened = open(&c, Token::Gateway, &home, &blob).unwrap();
        assert_eq!(opened.expose_secret(), "tok-secret");
        for elsewhere in [
            at(8, "gw.internal", 18789, true),
            at(7, "203.0.113.9", 18789, true),
            at(7, "gw.internal", 4444, true),
            at(7, "gw.internal", 18789, false),
            // Length-delimited: the parts cannot slide into each other.
            at(7, "gw.internal1", 8789, true),
        ] {
            assert!(
                open(&c, Token::Gateway, &elsewhere, &blob).is_none(),
                "{elsewhere:?}"
            );
        }
        assert!(
            open(&c, Token::Device, &home, &blob).is_none(),
            "another purpose"
        );
        let moved = at(7, "gw2.internal", 18789, true);
        let resealed = reseal(&c, Token::Gateway, &home, &moved, &blob).unwrap();
        assert_eq!(
            open(&c, Token::Gateway, &moved, &resealed)
                .unwrap()
                .expose_secret(),
            "tok-secret"
        );
    }
}
