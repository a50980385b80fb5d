"""The Cypher every graph backend runs, in one place; dialect differences carry their name.

Writing a document REPLACES its previous version (same `path`), in three parts:

1. `MERGE_DOCUMENT`   the Document node, keyed by path, with its current properties;
2. remove the old version: the document's chunks with their relationships, then every
   entity those chunks mentioned that no chunk mentions any more (per dialect, below);
3. `write_steps(dialect)`, nodes before relationships: `CREATE_CHUNKS`, `merge_entities`
   per label, then NEXT, MENTIONS per label, REFERS_TO.

Every step of part 3 UNWINDs one list parameter (`RowsStatement.rows`, built by
`write_parameters`) and may read `$path`, so a backend can send it whole or in batches
(`batched_statements`). Chunks are always matched through their document
(`(:Document {path})-[:HAS_CHUNK]->`), so two documents can never touch each other's chunks
even if chunk ids collide. Because part 2 deletes whatever part 3 created last time, the
whole sequence is idempotent: running it twice, or again after a failure in the middle,
gives the same graph.

A long document is written in parts (`GraphPart`, see `lexi_maint.graph.model`), never as
one payload, and still replaces its previous version in one atomic step: the parts' chunks
hang off a `(:Staging {path})` node, each part its own query or transaction (`write_steps`
with `owner=STAGING`, `part_parameters`); the last step (`FALKORDB_SWAP_STAGED`; on Memgraph
`STALE_ENTITIES`, `DELETE_OLD_CHUNKS`, `MOVE_STAGED_CHUNKS`, `DELETE_STAGING_NODE`, then
`delete_orphans`) replaces the old chunks with the staged ones
and removes the Staging node. Until then readers see the previous version whole; staged
rows left by a failure are removed before the next write of that path and on the way out
(`FALKORDB_CLEAR_STAGING`; on Memgraph `stale_entities_of(STAGING)`, `delete_chunks_of`,
`DELETE_STAGING_NODE`, then `delete_orphans`).

Dialects (`Dialect`, `FALKORDB`, `MEMGRAPH`):

- FalkorDB has no multi-statement transactions but runs one query atomically (undo on
  error): `FALKORDB_WRITE_DOCUMENT` joins all parts into one query of unit subqueries, and
  part 2 is `FALKORDB_DELETE_CHUNKS`, one statement that relies on seeing its own deletions.
  Pattern predicates are bare (`WHERE (a)-[:R]->(b)`): FalkorDB's exists() takes only
  properties. Index DDL: `falkordb_create_index`, `FALKORDB_LIST_INDEXES`.
- Memgraph runs one explicit transaction of many statements, so part 2 is split where no
  statement depends on seeing its own deletions: `STALE_ENTITIES` reads the keys of the
  entities the old chunks mention, `DELETE_OLD_CHUNKS` removes the chunks, and after part 3
  `delete_orphans` removes those entities nothing mentions any more. Pattern predicates are
  `exists(...)` (bare patterns arrived only in Memgraph 3.x). Memgraph runs writers
  concurrently, so every MERGE key gets a uniqueness constraint besides its index
  (`UNIQUE_KEYS`, `memgraph_create_unique`): two workers that both MERGE Term "loon" then
  collide at commit and one retries, instead of leaving two "loon" nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lexi_maint.errors import GraphError
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
    GraphPart,
    GraphStats,
    MentionRow,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines' Cypher, by name."""

    name: str
    exists_function: bool  # pattern predicates written as exists(pattern)

    def has_pattern(self, pattern: str) -> str:
        """A WHERE predicate that is true when `pattern` matches at least once."""
        return f"exists({pattern})" if self.exists_function else pattern


FALKORDB = Dialect("falkordb", exists_function=False)
MEMGRAPH = Dialect("memgraph", exists_function=True)


@dataclass(frozen=True)
class RowsStatement:
    """A statement that UNWINDs the list parameter named `rows` (and may read `$path`)."""

    text: str
    rows: str


@dataclass(frozen=True)
class Statement:
    """A statement with the parameters to run it with."""

    text: str
    params: Mapping[str, object]


# (label, property) pairs to index; every MERGE/MATCH key below is one of these.
INDEXES: tuple[tuple[str, str], ...] = (
    (DOCUMENT, "path"),
    (CHUNK, "id"),
    *((label, "name") for label in ENTITY_LABELS),
)
# The keys MERGE relies on: unique where the engine runs writers concurrently (Memgraph).
UNIQUE_KEYS: tuple[tuple[str, str], ...] = (
    (DOCUMENT, "path"),
    *((label, "name") for label in ENTITY_LABELS),
)

# --- part 1 -----------------------------------------------------------------------------

MERGE_DOCUMENT = f"""
MERGE (d:{DOCUMENT} {{path: $path}})
SET d.sha256 = $document.sha256, d.title = $document.title, d.pages = $document.pages
"""

# --- part 2 -----------------------------------------------------------------------------

STAGING = "Staging"  # owns a long document's chunks while its parts are written


def stale_entities_of(owner: str) -> str:
    """The labels and names of the entities the chunks of `owner` {path} mention."""
    return f"""
MATCH (:{owner} {{path: $path}})-[:{HAS_CHUNK}]->(:{CHUNK})-[:{MENTIONS}]->(e)
RETURN DISTINCT labels(e) AS labels, e.name AS name
"""


def delete_chunks_of(owner: str) -> str:
    return f"""
MATCH (:{owner} {{path: $path}})-[:{HAS_CHUNK}]->(old:{CHUNK})
DETACH DELETE old
"""


STALE_ENTITIES = stale_entities_of(DOCUMENT)
DELETE_OLD_CHUNKS = delete_chunks_of(DOCUMENT)

DELETE_STAGING_NODE = f"""
MATCH (s:{STAGING} {{path: $path}})
DETACH DELETE s
"""

# The staged chunks become the document's (run after its old chunks were deleted).
MOVE_STAGED_CHUNKS = f"""
MATCH (d:{DOCUMENT} {{path: $path}})
MATCH (:{STAGING} {{path: $path}})-[r:{HAS_CHUNK}]->(c:{CHUNK})
DELETE r
CREATE (d)-[:{HAS_CHUNK}]->(c)
"""

DELETE_DOCUMENT_NODE = f"""
MATCH (d:{DOCUMENT} {{path: $path}})
DETACH DELETE d
"""


def delete_orphans(dialect: Dialect, label: str) -> RowsStatement:
    """Delete the `label` entities named in `$names` that nothing mentions any more."""
    text = f"""
UNWIND $names AS name
MATCH (e:{label} {{name: name}})
WHERE NOT {dialect.has_pattern(f"(e)<-[:{MENTIONS}]-()")}
DELETE e
"""
    return RowsStatement(text, "names")


def stale_entities(rows: Iterable[Mapping[str, object]]) -> dict[str, list[str]]:
    """The rows of `STALE_ENTITIES` as entity names per label (labels outside the model
    are ignored: only lexi-maint's own entity labels are ever deleted)."""
    names: dict[str, list[str]] = {}
    for row in rows:
        labels, name = row.get("labels"), row.get("name")
        if not isinstance(labels, list) or not isinstance(name, str):
            raise GraphError(f"unexpected row from the stale-entity query: {row!r}")
        for label in labels:
            if label in ENTITY_LABELS:
                names.setdefault(str(label), []).append(name)
    return names


# --- part 3 -----------------------------------------------------------------------------


def _quoted(key: str) -> str:
    """A property key in backticks: reserved words differ per engine and version
    (`text` became one in Memgraph 2.17, `end` and `index` are keywords elsewhere)."""
    return f"`{key}`"


def _copy_properties(keys: Sequence[str], source: str) -> str:
    """A map literal that copies `keys` from the row `source`: {`k`: row.`k`, ...}."""
    return "{" + ", ".join(f"{_quoted(k)}: {source}.{_quoted(k)}" for k in keys) + "}"


CHUNK_PROPERTIES = ("id", "index", "text", "heading", "start", "end", "articles")


def create_chunks(owner: str = DOCUMENT) -> RowsStatement:
    """Chunk nodes under their document (under a new or existing Staging node: `STAGING`)."""
    find = "MERGE" if owner == STAGING else "MATCH"
    text = f"""
{find} (d:{owner} {{path: $path}})
WITH d
UNWIND $chunks AS row
CREATE (d)-[:{HAS_CHUNK}]->(:{CHUNK} {_copy_properties(CHUNK_PROPERTIES, "row")})
"""
    return RowsStatement(text, "chunks")


CREATE_CHUNKS = create_chunks()


def _match_chunk(dialect: Dialect, var: str, key: str, owner: str) -> str:
    """Bind `var` to the chunk of THIS document (or its staged version) whose id is `key`.

    Written as an index lookup on Chunk.id plus a pattern predicate on its one HAS_CHUNK
    edge; `(d)-[:HAS_CHUNK]->(c {id: key})` would scan all of the document's chunks for
    every row (FalkorDB 4.16 plans it that way), quadratic in the chunk count.
    """
    owned = dialect.has_pattern(f"(:{owner} {{path: $path}})-[:{HAS_CHUNK}]->({var})")
    return f"MATCH ({var}:{CHUNK} {{id: {key}}}) WHERE {owned}"


def create_next(dialect: Dialect, owner: str = DOCUMENT) -> RowsStatement:
    text = f"""
UNWIND $next AS pair
{_match_chunk(dialect, "a", "pair.source", owner)}
{_match_chunk(dialect, "b", "pair.target", owner)}
CREATE (a)-[:{NEXT}]->(b)
"""
    return RowsStatement(text, "next")


def create_refers_to(dialect: Dialect, owner: str = DOCUMENT) -> RowsStatement:
    text = f"""
UNWIND $references AS ref
{_match_chunk(dialect, "a", "ref.source", owner)}
{_match_chunk(dialect, "b", "ref.target", owner)}
CREATE (a)-[:{REFERS_TO} {{article: ref.article}}]->(b)
"""
    return RowsStatement(text, "references")


_ON_CREATE = {
    AMOUNT: "\nON CREATE SET e.value = row.value, e.currency = row.currency",
    PERCENTAGE: "\nON CREATE SET e.value = row.value",
}


def mentions_parameter(label: str) -> str:
    """The parameter that holds the mention rows of one entity label."""
    return f"mentions_{label.lower()}"


def entities_parameter(label: str) -> str:
    """The parameter that holds the distinct entities of one label."""
    return f"entities_{label.lower()}"


def merge_entities(label: str) -> RowsStatement:
    text = f"""
UNWIND ${entities_parameter(label)} AS row
MERGE (e:{label} {{name: row.name}}){_ON_CREATE.get(label, "")}
"""
    return RowsStatement(text, entities_parameter(label))


def create_mentions(dialect: Dialect, label: str, owner: str = DOCUMENT) -> RowsStatement:
    text = f"""
UNWIND ${mentions_parameter(label)} AS m
{_match_chunk(dialect, "c", "m.chunk_id", owner)}
MATCH (e:{label} {{name: m.name}})
CREATE (c)-[:{MENTIONS}]->(e)
"""
    return RowsStatement(text, mentions_parameter(label))


def write_steps(dialect: Dialect, owner: str = DOCUMENT) -> tuple[RowsStatement, ...]:
    """Part 3 in order: nodes (chunks, entities) before relationships (`owner`: STAGING
    for a part of a long document)."""
    return (
        create_chunks(owner),
        *(merge_entities(label) for label in ENTITY_LABELS),
        create_next(dialect, owner),
        *(create_mentions(dialect, label, owner) for label in ENTITY_LABELS),
        create_refers_to(dialect, owner),
    )


def write_parameters(doc: GraphDocument) -> dict[str, object]:
    """The parameters every statement of a document write reads."""
    part = GraphPart(doc.chunks, doc.next_pairs, doc.mentions, doc.references)
    return {**part_parameters(doc.path, part), "document": dict(doc.document)}


def part_parameters(path: str, part: GraphPart) -> dict[str, object]:
    """The parameters the `write_steps` statements read, for one part of a document."""
    params: dict[str, object] = {
        "path": path,
        "chunks": [dict(row) for row in part.chunks],
        "next": [dict(row) for row in part.next_pairs],
        "references": [dict(row) for row in part.references],
    }
    for label in ENTITY_LABELS:
        mentions = [m for m in part.mentions if m["label"] == label]
        params[mentions_parameter(label)] = [dict(row) for row in mentions]
        params[entities_parameter(label)] = _entities(mentions)
    return params


def _entities(mentions: Iterable[MentionRow]) -> list[dict[str, object]]:
    """One row per distinct name (the first mention's value and currency)."""
    rows: dict[str, dict[str, object]] = {}
    for m in mentions:
        if m["name"] not in rows:
            row: dict[str, object] = {"name": m["name"]}
            row.update({k: v for k, v in m.items() if k in ("value", "currency")})
            rows[m["name"]] = row
    return list(rows.values())


def batched(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`rows` in slices of at most `size`; nothing for no rows."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def batched_statements(
    step: RowsStatement,
    rows: Sequence[object],
    size: int,
    fixed: Mapping[str, object],
) -> Iterator[Statement]:
    """`step` once per batch of `rows`, each with the `fixed` parameters (e.g. path)."""
    for batch in batched(rows, size):
        yield Statement(step.text, {**fixed, step.rows: list(batch)})


def write_plan(doc: GraphDocument, dialect: Dialect, batch_size: int) -> list[Statement]:
    """Part 3 of a document write as statements of at most `batch_size` rows each."""
    return _plan(write_parameters(doc), write_steps(dialect), doc.path, batch_size)


def part_plan(path: str, part: GraphPart, dialect: Dialect, batch_size: int) -> list[Statement]:
    """One part of a long document, staged, as statements of at most `batch_size` rows."""
    steps = write_steps(dialect, STAGING)
    return _plan(part_parameters(path, part), steps, path, batch_size)


def _plan(
    params: Mapping[str, object], steps: Sequence[RowsStatement], path: str, batch_size: int
) -> list[Statement]:
    plan: list[Statement] = []
    for step in steps:
        rows = params[step.rows]
        assert isinstance(rows, list)
        plan.extend(batched_statements(step, rows, batch_size, {"path": path}))
    return plan


def orphan_plan(
    dialect: Dialect, stale: Mapping[str, Sequence[str]], batch_size: int
) -> list[Statement]:
    """The `delete_orphans` statements for the entities in `stale` (from `stale_entities`)."""
    plan: list[Statement] = []
    for label in ENTITY_LABELS:
        plan.extend(
            batched_statements(delete_orphans(dialect, label), stale.get(label, []), batch_size, {})
        )
    return plan


# --- reading ----------------------------------------------------------------------------


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


# What the ledger is checked against: every document's content hash and chunk count.
DOCUMENT_HASHES = f"MATCH (d:{DOCUMENT}) RETURN d.path AS path, d.sha256 AS sha256"
DOCUMENT_CHUNKS = (
    f"MATCH (d:{DOCUMENT}) OPTIONAL MATCH (d)-[:{HAS_CHUNK}]->(c:{CHUNK})"
    " RETURN d.path AS path, d.sha256 AS sha256, count(c) AS chunks"
)


def parse_stats(rows: Sequence[Mapping[str, object]]) -> GraphStats:
    """The one row of `STATS` as GraphStats."""
    if len(rows) != 1:
        raise GraphError(f"the count query returned {len(rows)} rows instead of one")
    row = rows[0]
    return GraphStats(
        nodes={label: _count(row, label) for label in NODE_LABELS},
        relationships={rel: _count(row, rel) for rel in RELATIONSHIP_TYPES},
    )


def _count(row: Mapping[str, object], name: str) -> int:
    value = row.get(stats_column(name))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise GraphError(f"the count of {name} is not an integer: {value!r}")


# --- FalkorDB dialect -------------------------------------------------------------------


def falkordb_delete_chunks(owner: str) -> str:
    """Delete the chunks of `owner` {path} and the entities nothing mentions then."""
    return f"""
MATCH (:{owner} {{path: $path}})-[:{HAS_CHUNK}]->(old:{CHUNK})
OPTIONAL MATCH (old)-[:{MENTIONS}]->(entity)
WITH collect(DISTINCT old) AS olds, collect(DISTINCT entity) AS entities
FOREACH (chunk IN olds | DETACH DELETE chunk)
WITH entities
UNWIND entities AS entity
WITH entity WHERE NOT (entity)<-[:{MENTIONS}]-()
DELETE entity
"""


FALKORDB_DELETE_CHUNKS = falkordb_delete_chunks(DOCUMENT)

FALKORDB_LIST_INDEXES = "CALL db.indexes() YIELD label, properties RETURN label, properties"


def falkordb_create_index(label: str, prop: str) -> str:
    """FalkorDB's range-index DDL (Memgraph: `memgraph_create_index`)."""
    return f"CREATE INDEX FOR (n:{label}) ON (n.{prop})"


def falkordb_single_query(statements: Sequence[str]) -> str:
    """Join statements into ONE query of unit subqueries, which FalkorDB runs atomically."""
    return "\n".join(f"CALL {{{statement.rstrip()}\n}}" for statement in statements)


# Replace one document in one atomic query; takes `write_parameters(doc)`.
FALKORDB_WRITE_DOCUMENT = falkordb_single_query(
    [MERGE_DOCUMENT, FALKORDB_DELETE_CHUNKS, *(step.text for step in write_steps(FALKORDB))]
)
# A long document: remove what an unfinished write staged; takes `{"path": ...}`.
FALKORDB_CLEAR_STAGING = falkordb_single_query(
    [falkordb_delete_chunks(STAGING), DELETE_STAGING_NODE]
)
# Remove one document (and anything staged for it) and whatever only it mentioned; takes
# `{"path": ...}`.
FALKORDB_DELETE_DOCUMENT = falkordb_single_query(
    [FALKORDB_DELETE_CHUNKS, DELETE_DOCUMENT_NODE, FALKORDB_CLEAR_STAGING]
)
# ... write one part, staged; takes `part_parameters(path, part)`.
FALKORDB_WRITE_PART = falkordb_single_query([step.text for step in write_steps(FALKORDB, STAGING)])
# ... replace the previous version with the staged one; takes `{"path": ..., "document": ...}`.
FALKORDB_SWAP_STAGED = falkordb_single_query(
    [MERGE_DOCUMENT, FALKORDB_DELETE_CHUNKS, MOVE_STAGED_CHUNKS, DELETE_STAGING_NODE]
)

# --- Memgraph dialect -------------------------------------------------------------------

MEMGRAPH_SHOW_INDEXES = "SHOW INDEX INFO"
MEMGRAPH_SHOW_CONSTRAINTS = "SHOW CONSTRAINT INFO"


def memgraph_create_index(label: str, prop: str) -> str:
    """Memgraph's label-property index DDL (accepted by every Memgraph 2.x and 3.x)."""
    return f"CREATE INDEX ON :{label}({prop})"


def memgraph_create_unique(label: str, prop: str) -> str:
    """Memgraph's uniqueness constraint (it does not create the index: see INDEXES)."""
    return f"CREATE CONSTRAINT ON (n:{label}) ASSERT n.{prop} IS UNIQUE"
