from django.urls import path
from rest_framework.routers import SimpleRouter

from . import conversations_api, customers_api, views

router = SimpleRouter()
router.register("channels", conversations_api.ChannelViewSet, basename="channel")
router.register("conversations", conversations_api.ConversationViewSet, basename="conversation")
router.register("interactions", conversations_api.InteractionViewSet, basename="interaction")
router.register("customers", customers_api.CustomerViewSet, basename="customer")
router.register("customer-merges", customers_api.CustomerMergeViewSet, basename="customer-merge")
router.register("merge-suggestions", customers_api.MergeSuggestionViewSet, basename="merge-suggestion")
router.register("customer-imports", customers_api.CustomerImportViewSet, basename="customer-import")
router.register(
    "customer-attributes", customers_api.AttributeDefinitionViewSet, basename="customer-attribute"
)

urlpatterns = [
    path("messages/", views.MessageCreate.as_view(), name="message-create"),
    *router.urls,
]
