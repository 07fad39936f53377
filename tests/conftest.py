import os
import warnings

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture
def lake(tmp_path):
    from alvh_pipeline.lake import Lake

    return Lake(str(tmp_path / "lake"))
