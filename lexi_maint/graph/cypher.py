"""The Cypher every graph backend runs, in one place (FalkorDB now, Memgraph later).

Writing a document REPLACES its previous version (same `path`):

1. `MERGE_DOCUMENT`   the Document node, keyed by path, with its current properties;
2. `DELETE_CHUNKS`    the document's old chunks with their relationships, then every entity
                      those chunks mentioned that no chunk mentions any more;
3. `CREATE_CHUNKS`, `CREATE_NEXT`, `CREATE_MENTIONS[label]`, `CREATE_REFERS_TO`.

Each statement stands alone and takes the parameters built by `write_parameters`, so a
backend with transactions (Memgraph) runs `WRITE_DOCUMENT` in order inside one transaction.
Chunks are always matched through their document (`(:Document {path})-[:HAS_CHUNK]->`), so
two documents can never touch each other's chunks even if chunk ids collide. Because step 2
deletes whatever step 3 created last time, the whole sequence is idempotent: running it
twice, or again after a crash in the middle, gives the same graph.

Dialect-specific pieces carry the backend's name: FalkorDB has no multi-statement
transactions but runs one query atomically (with undo on error), so `falkordb_single_query`
joins the statements into one query of unit subqueries (`CALL { ... }`); index DDL differs
per backend (`falkordb_create_index`, `FALKORDB_LIST_INDEXES`).
"""

from __future__ import annotations

from collections.abc import Sequence

from lexi_maint.graph.model import (
    AMOUNT,
    CHUNK,
    DOCUMENT,
    ENTITY_LABELS,
    HAS_CHUNK,
    MENTIONS,
    NEXT,
    NODE_LABELS,
    PERCENTAGE,
    REFERS_TO,
    RELATIONSHIP_TYPES,
    GraphDocument,
)

# (label, property) pairs to index; every MERGE/MATCH key below is one of these.
INDEXES: tuple[tuple[str, str], ...] = (
    (DOCUMENT, "path"),
    (CHUNK, "id"),
    *((label, "name") for label in ENTITY_LABELS),
)

MERGE_DOCUMENT = f"""
MERGE (d:{DOCUMENT} {{path: $path}})
SET d.sha256 = $document.sha256, d.title = $document.title, d.pages = $document.pages
"""

DELETE_CHUNKS = f"""
MATCH (:{DOCUMENT} {{path: $path}})-[:{HAS_CHUNK}]->(old:{CHUNK})
OPTIONAL MATCH (old)-[:{MENTIONS}]->(entity)
WITH collect(DISTINCT old) AS olds, collect(DISTINCT entity) AS entities
FOREACH (chunk IN olds | DETACH DELETE chunk)
WITH entities
UNWIND entities AS entity
WITH entity WHERE NOT (entity)<-[:{MENTIONS}]-()
DELETE entity
"""

DELETE_DOCUMENT_NODE = f"""
MATCH (d:{DOCUMENT} {{path: $path}})
DETACH DELETE d
"""

CREATE_CHUNKS = f"""
MATCH (d:{DOCUMENT} {{path: $path}})
UNWIND $chunks AS row
CREATE (d)-[:{HAS_CHUNK}]->(:{CHUNK} {{id: row.id, index: row.index, text: row.text,
    heading: row.heading, start: row.start, end: row.end}})
"""


def _match_chunk(var: str, key: str) -> str:
    """Bind `var` to the chunk of THIS document whose id is `key`.

    Written as an index lookup on Chunk.id plus a pattern predicate on its one HAS_CHUNK
    edge; `(d)-[:HAS_CHUNK]->(c {id: key})` would scan all of the document's chunks for
    every row (FalkorDB 4.16 plans it that way), quadratic in the chunk count.
    """
    return (
        f"MATCH ({var}:{CHUNK} {{id: {key}}}) "
        f"WHERE (:{DOCUMENT} {{path: $path}})-[:{HAS_CHUNK}]->({var})"
    )


CREATE_NEXT = f"""
UNWIND $next AS pair
{_match_chunk("a", "pair.source")}
{_match_chunk("b", "pair.target")}
CREATE (a)-[:{NEXT}]->(b)
"""

CREATE_REFERS_TO = f"""
UNWIND $references AS ref
{_match_chunk("a", "ref.source")}
{_match_chunk("b", "ref.target")}
CREATE (a)-[:{REFERS_TO} {{article: ref.article}}]->(b)
"""

_ON_CREATE = {
    AMOUNT: "\nON CREATE SET e.value = m.value, e.currency = m.currency",
    PERCENTAGE: "\nON CREATE SET e.value = m.value",
}


def mentions_parameter(label: str) -> str:
    """The parameter that holds the mention rows of one entity label."""
    return f"mentions_{label.lower()}"


def _create_mentions(label: str) -> str:
    return f"""
UNWIND ${mentions_parameter(label)} AS m
{_match_chunk("c", "m.chunk_id")}
MERGE (e:{label} {{name: m.name}}){_ON_CREATE.get(label, "")}
CREATE (c)-[:{MENTIONS}]->(e)
"""


CREATE_MENTIONS: dict[str, str] = {label: _create_mentions(label) for label in ENTITY_LABELS}

# Replace one document, in this order (see the module docstring).
WRITE_DOCUMENT: tuple[str, ...] = (
    MERGE_DOCUMENT,
    DELETE_CHUNKS,
    CREATE_CHUNKS,
    CREATE_NEXT,
    *CREATE_MENTIONS.values(),
    CREATE_REFERS_TO,
)

# Remove one document and whatever only it mentioned; takes `{"path": ...}`.
DELETE_DOCUMENT: tuple[str, ...] = (DELETE_CHUNKS, DELETE_DOCUMENT_NODE)


def write_parameters(doc: GraphDocument) -> dict[str, object]:
    """The parameters every statement of `WRITE_DOCUMENT` reads."""
    params: dict[str, object] = {
        "path": doc.path,
        "document": dict(doc.document),
        "chunks": [dict(row) for row in doc.chunks],
        "next": [dict(row) for row in doc.next_pairs],
        "references": [dict(row) for row in doc.references],
    }
    for label in ENTITY_LABELS:
        params[mentions_parameter(label)] = [dict(row) for row in doc.mentions_of(label)]
    return params


def stats_column(name: str) -> str:
    """The column of `STATS` that counts one label or relationship type."""
    return f"count_{name}"


def _count_subquery(name: str, pattern: str) -> str:
    return f"CALL {{ MATCH {pattern} RETURN count(*) AS {stats_column(name)} }}"


# One read that counts every label and relationship type in a single snapshot.
STATS = "\n".join(
    [
        *(_count_subquery(label, f"(:{label})") for label in NODE_LABELS),
        *(_count_subquery(rel, f"()-[:{rel}]->()") for rel in RELATIONSHIP_TYPES),
        "RETURN " + ", ".join(stats_column(n) for n in (*NODE_LABELS, *RELATIONSHIP_TYPES)),
    ]
)

# --- FalkorDB dialect -------------------------------------------------------------------

FALKORDB_LIST_INDEXES = "CALL db.indexes() YIELD label, properties RETURN label, properties"


def falkordb_create_index(label: str, prop: str) -> str:
    """FalkorDB's range-index DDL (Memgraph spells it `CREATE INDEX ON :Label(prop)`)."""
    return f"CREATE INDEX FOR (n:{label}) ON (n.{prop})"


def falkordb_single_query(statements: Sequence[str]) -> str:
    """Join statements into ONE query of unit subqueries, which FalkorDB runs atomically."""
    return "\n".join(f"CALL {{{statement.rstrip()}\n}}" for statement in statements)
