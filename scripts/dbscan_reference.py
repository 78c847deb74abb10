"""Label test/vectors/dbscan-cases.json with scikit-learn's DBSCAN; write dbscan-sklearn.json.

Run through scripts/dbscan-reference.sh (it installs Debian's python3-sklearn if needed).
A reference only: scikit-learn is never a dependency of the product.
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.cluster import DBSCAN

here = pathlib.Path(__file__).resolve().parent.parent / "test" / "vectors"
cases = json.loads((here / "dbscan-cases.json").read_text())
out = {"sklearn": sklearn.__version__, "labels": {}}
for c in cases:
    x = np.asarray(c["points"], dtype=np.float64)
    model = DBSCAN(eps=c["eps"], min_samples=c["minPts"], metric=c["metric"]).fit(x)
    out["labels"][c["name"]] = [int(v) for v in model.labels_]
(here / "dbscan-sklearn.json").write_text(json.dumps(out, indent=1) + "\n")
print(f"labelled {len(cases)} cases with scikit-learn {sklearn.__version__}")
