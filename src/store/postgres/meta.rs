//! The listings PostgreSQL spells its own way: slugs sort bytewise only when told
//! (`COLLATE "C"`), as SQLite sorts them.

use crate::store::dialect::MetaTexts;
pub(super) const TEXTS: MetaTexts = MetaTexts {
    list_categories: "SELECT c.slug, c.name,
        (SELECT count(*) FROM questions q WHERE q.category_id = c.id) AS question_count
     FROM categories c ORDER BY c.slug COLLATE \"C\"",
    list_tags: "SELECT t.slug, count(*) AS question_count
     FROM tags t JOIN question_tags qt ON qt.tag_id = t.id
     GROUP BY t.id ORDER BY question_count DESC, t.slug COLLATE \"C\" LIMIT $1",
};
