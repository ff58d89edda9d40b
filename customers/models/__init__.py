from .consent import ConsentChannel, ConsentEvent, ConsentPurpose, ConsentSource, ConsentStatus
from .events import CustomerEvent
from .identities import Customer, Identity, IdentityKind, PreferredChannel
from .merges import CustomerMerge, MergeSource, MergeSuggestion, SuggestionStatus
from .privacy import CustomerErasure, CustomerImport, ImportStatus
from .profile import AttributeDefinition, AttributeType, ResolutionPolicy

__all__ = [
    "AttributeDefinition",
    "AttributeType",
    "ConsentChannel",
    "ConsentEvent",
    "ConsentPurpose",
    "ConsentSource",
    "ConsentStatus",
    "Customer",
    "CustomerErasure",
    "CustomerEvent",
    "CustomerImport",
    "CustomerMerge",
    "Identity",
    "IdentityKind",
    "ImportStatus",
    "MergeSource",
    "MergeSuggestion",
    "PreferredChannel",
    "ResolutionPolicy",
    "SuggestionStatus",
]
