//! The trust material for verifying signatures (S/MIME and PDF): the trust anchors and CRLs
//! from the database (`cert trust add`, `cert crl add`), so a change applies to the next
//! message without a restart. They are cached by the row ids of both tables in a
//! [`TrustCache`] owned by its user (the intake stage, the deliverer; never shared between two
//! servers in one process): a look costs two id queries, and a CRL is read again only when
//! one was added or removed.

use std::sync::{Arc, Mutex, PoisonError};

use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryOrder, QuerySelect};

use crate::smime::verify::TrustStore;
use crate::store::entity::{crl, trust_anchor};

/// Trust material and the row ids it was loaded from.
struct Material {
    anchor_ids: Vec<i64>,
    crl_ids: Vec<i64>,
    anchors: Arc<TrustStore>,
    crls: Arc<Vec<Vec<u8>>>,
}

/// The trust material last read from the database, owned by the server context.
#[derive(Default)]
pub struct TrustCache(Mutex<Option<Material>>);

/// The configured trust anchors and CRLs, from the cache when no row changed.
pub async fn material(
    db: &DatabaseConnection,
    cache: &TrustCache,
) -> Result<(Arc<TrustStore>, Arc<Vec<Vec<u8>>>), DbErr> {
    let anchor_ids: Vec<i64> = trust_anchor::Entity::find()
        .select_only()
        .column(trust_anchor::Column::Id)
        .order_by_asc(trust_anchor::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let crl_ids: Vec<i64> = crl::Entity::find()
        .select_only()
        .column(crl::Column::Id)
        .order_by_asc(crl::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    {
        let c = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = c.as_ref() {
            if m.anchor_ids == anchor_ids && m.crl_ids == crl_ids {
                return Ok((m.anchors.clone(), m.crls.clone()));
            }
        }
    }
    let anchors = trust_anchor::Entity::find()
        .order_by_asc(trust_anchor::Column::Id)
        .all(db)
        .await?;
    let crls = crl::Entity::find()
        .order_by_asc(crl::Column::Id)
        .all(db)
        .await?;
    let m = Material {
        anchor_ids: anchors.iter().map(|a| a.id).collect(),
        crl_ids: crls.iter().map(|c| c.id).collect(),
        anchors: Arc::new(TrustStore::from_pems(
            anchors.iter().map(|a| a.pem.as_str()),
        )),
        crls: Arc::new(crls.into_iter().map(|c| c.der).collect()),
    };
    let out = (m.anchors.clone(), m.crls.clone());
    *cache.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(m);
    Ok(out)
}
