//! Statements that write many rows at once: one UPDATE for rows that each get values of their
//! own, so a group commit costs one statement per table rather than one per row.

use sea_orm::sea_query::{CaseStatement, Condition, Expr, IntoCondition, SimpleExpr};
use sea_orm::{EntityTrait, IdenStatic, QueryFilter, UpdateMany};

/// One row's part of a batched UPDATE: the condition that names it (its key) and the values
/// it gets.
pub struct RowUpdate<E: EntityTrait> {
    pub which: Condition,
    pub values: Vec<(E::Column, SimpleExpr)>,
}

impl<E: EntityTrait> RowUpdate<E> {
    pub fn new(which: impl IntoCondition, values: Vec<(E::Column, SimpleExpr)>) -> Self {
        RowUpdate {
            which: which.into_condition(),
            values,
        }
    }
}

/// Rows per statement: SQLite counts each `OR` of the WHERE clause as one more level of
/// expression depth (at most 1000), and PostgreSQL takes at most 65,535 bound values.
const ROWS_PER_STATEMENT: usize = 200;

/// UPDATEs of the rows of `E` that `rows` name, each row with its own values: a column set for
/// any row becomes `CASE WHEN <row> THEN <its value> ... ELSE <column> END`, so a row that does
/// not set it keeps it, and a statement touches only the rows named. One statement per 200
/// rows; a single row gets plain `SET column = value`. Every expression sees the row as it
/// was before its statement (SQL's rule for SET), as separate UPDATEs of distinct rows would.
pub fn update_rows<E: EntityTrait>(mut rows: Vec<RowUpdate<E>>) -> Vec<UpdateMany<E>> {
    let mut statements = Vec::with_capacity(rows.len().div_ceil(ROWS_PER_STATEMENT));
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(ROWS_PER_STATEMENT));
        statements.push(one_update(std::mem::replace(&mut rows, rest)));
    }
    statements
}

fn one_update<E: EntityTrait>(rows: Vec<RowUpdate<E>>) -> UpdateMany<E> {
    let mut update = E::update_many();
    if rows.len() == 1 {
        for row in rows {
            for (column, value) in row.values {
                update = update.col_expr(column, value);
            }
            update = update.filter(row.which);
        }
        return update;
    }
    // Columns in the order rows first set them; per column, the rows' (condition, value).
    type Whens = Vec<(Condition, SimpleExpr)>;
    let mut columns: Vec<(E::Column, Whens)> = Vec::new();
    let mut any = Condition::any();
    for row in rows {
        for (column, value) in row.values {
            let at = match columns
                .iter()
                .position(|(c, _)| c.as_str() == column.as_str())
            {
                Some(at) => at,
                None => {
                    columns.push((column, Vec::new()));
                    columns.len() - 1
                }
            };
            columns[at].1.push((row.which.clone(), value));
        }
        any = any.add(row.which);
    }
    for (column, whens) in columns {
        let case = whens
            .into_iter()
            .fold(CaseStatement::new(), |case, (which, value)| {
                case.case(which, value)
            })
            .finally(Expr::col(column));
        update = update.col_expr(column, case.into());
    }
    update.filter(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entity::register_recipient as rr;
    use sea_orm::sea_query::ExprTrait;
    use sea_orm::{ActiveModelTrait, ColumnTrait, Set};

    /// Three rows, each with its own values (one leaves a column alone), and a fourth row the
    /// statement does not name: one statement, the same result as an UPDATE per row.
    #[tokio::test]
    async fn one_statement_gives_each_row_its_own_values() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(&format!("sqlite://{}/b.db", dir.path().display()))
            .await
            .unwrap();
        for (i, address) in ["a", "b", "c", "d"].into_iter().enumerate() {
            rr::ActiveModel {
                entry_id: Set("e".into()),
                address: Set(address.into()),
                route: Set("outbound".into()),
                state: Set(crate::model::RecipientState::Pending),
                reply: Set(None),
                attempts: Set(i as i32),
                ..Default::default()
            }
            .insert(&db)
            .await
            .unwrap();
        }
        let row = |address: &str, reply: Option<&str>| {
            let mut values = vec![(
                rr::Column::Attempts,
                Expr::col(rr::Column::Attempts).add(10),
            )];
            if let Some(reply) = reply {
                values.push((rr::Column::Reply, Expr::value(reply)));
            }
            RowUpdate::<rr::Entity>::new(rr::Column::Address.eq(address), values)
        };
        let mut updates = update_rows(vec![
            row("a", Some("250 a")),
            row("b", None),
            row("c", Some("550 c")),
        ]);
        assert_eq!(updates.len(), 1);
        let update = updates.remove(0);
        let sql = db
            .get_database_backend()
            .build(&sea_orm::QueryTrait::into_query(update.clone()));
        assert!(sql.sql.contains("CASE WHEN"), "{sql}");
        assert_eq!(update.exec(&db).await.unwrap().rows_affected, 3);
        let mut rows: Vec<(String, Option<String>, i32)> = rr::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.address, m.reply, m.attempts))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("a".into(), Some("250 a".into()), 10),
                ("b".into(), None, 11),
                ("c".into(), Some("550 c".into()), 12),
                ("d".into(), None, 3),
            ]
        );
        assert!(update_rows::<rr::Entity>(Vec::new()).is_empty());
        // More rows than one statement takes (SQLite's expression depth, PostgreSQL's bound
        // values): several statements, every row updated.
        let many: Vec<_> = (0..450).map(|_| row("d", None)).collect();
        let updates = update_rows(many);
        assert_eq!(updates.len(), 3);
        for update in updates {
            update.exec(&db).await.unwrap();
        }
        let d = rr::Entity::find()
            .filter(rr::Column::Address.eq("d"))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.attempts, 3 + 10 * 3, "one +10 per statement naming it");
    }
}
