"""Load benchmark (issue 8 "Load"; catalogue cases 52-54): a real gunicorn with several workers and the job worker
on 127.0.0.1, bounded in time.

    .venv/bin/python -m bench.load [--uploaders 20] [--searchers 50] [--editors 4] [--seconds 60] [--workers 4]
                                   [--storage local|s3] [--seeds 40] [--drain-seconds 600] [--keep FOLDER]

It starts its own archive (``brucken init`` + ``brucken run`` through tests/servers/archive.py) in a temporary
folder, makes a member with an API token for each uploader and a curator, and publishes ``--seeds`` photos with
generated German/English captions (bench/search.py's word pools) so that searches find something. Then, at once
and for ``--seconds``:

- uploaders (closed loop, no pause): real camera JPEGs from ../shared/corpus, each made unique by a JPEG comment
  (a new SHA-256 each time), about 10 % invalid files (text, empty, a 400-Mpx PNG bomb, a JPEG cut after 300
  bytes), about 5 % duplicates of photos already accepted, and "twins": the same new photo from two uploaders at
  the same moment. Even uploaders use the upload form, odd ones the chunk API (1 MB chunks);
- searchers: the search API and page with the query mix of bench/search.py, filters and second pages, the public
  gallery pages, photo pages and thumbnails; every fifth searcher with a member's token;
- caption editors: a curator's token changing captions of published photos (the indexer commits them while people
  search; two edits of the same version: the second gets 409).

Afterwards it waits (bounded) until every photo is processed and the index has applied the outbox, stops the
server and checks: answers by status class (zero 5xx), every accepted upload exactly once in the database (SHA-256
sets: nothing lost, nothing twice), every valid file archived or answered as a duplicate and every invalid one
refused with a 4xx, every photo processed, captions that some successful edit wrote, and I1 I3 I4 I5 of the
catalogue (tests/consistency.py). It prints p50/p95/p99 per request kind, throughput, the resident memory of every
gunicorn worker and the job worker (sampled every 2 s from the start of the load until the queue has drained:
first, last, max, and "flat" when the last third's mean is less than 20 % above the first third's), the server
log's error lines, and the anchor: the search API's p95 on the idle archive (150 requests one at a time, before
the load), measured in the same run, and the ratio p95 under load / idle. Exit status 1 when a target is not met.
Figures of a run: bench/load/NOTE.md.

Client and server share the machine: the client threads' own CPU time is part of the figures.
"""
