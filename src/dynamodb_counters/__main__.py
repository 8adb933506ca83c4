"""python -m dynamodb_counters"""

from .cli import main

raise SystemExit(main())
