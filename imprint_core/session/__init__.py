"""One user's session, without Gradio: the project state and its operations, intake of files,
the texts shown to users, the example projects and the shared backbones.

The UI imports this package (``from imprint_core import session as pj``) and nothing of the
library; this package imports the library, never the UI.
"""

from .backbone import (
    backbone_dims,
    backbone_names,
    backbone_or_default,
    default_backbone_name,
    load_backbone,
    start_warmup,
)
from .camera import classify_frame
from .disk import QuotaError, UploadCacheGuard
from .downloads import DOWNLOADS, export_metadata, export_project_onnx, save_project
from .downloads import make as make_download
from .heads import head_backbone, load_head_file
from .insight import MAP_SPACE_DEFAULT, map_space_choices
from .intake import (
    iter_folder_images,
    iter_uploaded_folder,
    iter_zip_images,
    prepare_image,
    records_from_labels,
    uploaded_folder_name,
)
from .keys import claim as claim_project
from .keys import release as release_project
from .keys import swap as swap_project
from .lifecycle import (
    close_all,
    delete_upload_spools,
    server_address,
    sweep_upload_cache,
    sweep_workdirs,
)
from .limits import *  # noqa: F403 - the limits are part of the session's public face
from .limits import ProjectError
from .method import apply_advice, apply_augment, apply_settings, change_backbone, imprint_with
from .names import validate_class_name
from .opening import open_project
from .pile import LIMITS as PILE_LIMITS
from .pile import SORTS as PILE_SORTS
from .pile import summary as pile_summary
from .project import Project
from .quotas import (
    HEAVY_CONCURRENCY,
    MAX_HEAD_MB,
    MAX_PILE_IMAGES,
    MAX_PREDICT_FILES,
    PILE_UNSURE,
    SESSION_TTL_S,
)
from .scheduler import SCHEDULER
from .settings import (
    AUGMENT_DEFAULT,
    OPTION_ORDER,
    default_settings,
    evaluation_scheme,
    make_classifier,
    option_choices,
    preset_names,
)
from .state import ClassEntry, ImageItem
from .texts import (
    accuracy_markdown,
    batch_rows,
    escape_html,
    escape_md,
    evidence_rows,
    geometry_markdown,
    geometry_primer,
    kcurve_text,
    per_class_rows,
    percent,
    prediction_html,
    preset_description,
    python_snippet,
    status_line,
    summary_markdown,
    unknown_note,
)
from .views import TRIED_IMAGE_GROUPS, VIEWS, group_views, view_groups, views
