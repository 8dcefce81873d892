"""The portal's data model. Every table here is created and changed by Alembic migrations only."""

from .annotations import (Annotation, Classification, Comment, Taxonomy, annotation_groups, classification_groups,
                          comment_groups, taxonomy_groups)
from .astro import Candidate, Filter, Obj, Source, Stream, group_streams
from .base import Base
from .gw import GcnEvent, GcnNotice, GcnProperty, GcnTag, Localization, LocalizationTile
from .instrument_fields import InstrumentField
from .instruments import INSTRUMENT_TYPES, Instrument, Telescope
from .live import Delivery, LiveEvent, Notification, Subscription
from .listings import LIST_NAMES, Listing
from .photometry import PHOT_DETECTION_THRESHOLD, PHOT_ZP, Photometry, photometry_groups
from .thumbnails import THUMBNAIL_TYPES, Thumbnail
from .social import SocialAssociation, SocialCode, SocialNonce, SocialPartial, UserSocialAuth
from .users import ACL, Group, GroupUser, Role, Token, User, UserSession, role_acls, user_acls, user_roles

__all__ = [name for name in dir() if not name.startswith("_")]
