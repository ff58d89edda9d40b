from django.urls import path
from rest_framework.routers import SimpleRouter

from . import (
    campaigns_api,
    conversations_api,
    customers_api,
    insights_api,
    journeys_api,
    reports_api,
    search_api,
    segments_api,
    teamwork_api,
    views,
    webhooks_api,
)

router = SimpleRouter()
router.register("channels", conversations_api.ChannelViewSet, basename="channel")
router.register("conversations", conversations_api.ConversationViewSet, basename="conversation")
router.register("teams", teamwork_api.TeamViewSet, basename="team")
router.register("labels", teamwork_api.LabelViewSet, basename="label")
router.register("canned-responses", teamwork_api.CannedResponseViewSet, basename="canned-response")
router.register("agent-tasks", insights_api.AgentTaskViewSet, basename="agent-task")
router.register("sla-policies", insights_api.SlaPolicyViewSet, basename="sla-policy")
router.register("sla-breaches", insights_api.SlaBreachViewSet, basename="sla-breach")
router.register("csat-responses", insights_api.CsatResponseViewSet, basename="csat-response")
router.register("interactions", conversations_api.InteractionViewSet, basename="interaction")
router.register("customers", customers_api.CustomerViewSet, basename="customer")
router.register("customer-merges", customers_api.CustomerMergeViewSet, basename="customer-merge")
router.register("merge-suggestions", customers_api.MergeSuggestionViewSet, basename="merge-suggestion")
router.register("customer-imports", customers_api.CustomerImportViewSet, basename="customer-import")
router.register(
    "customer-attributes", customers_api.AttributeDefinitionViewSet, basename="customer-attribute"
)
router.register("webhook-endpoints", webhooks_api.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", webhooks_api.WebhookDeliveryViewSet, basename="webhook-delivery")

router.register("segments", segments_api.SegmentViewSet, basename="segment")
router.register("campaigns", campaigns_api.CampaignViewSet, basename="campaign")
router.register("journeys", journeys_api.JourneyViewSet, basename="journey")
router.register("enrollments", journeys_api.EnrollmentViewSet, basename="enrollment")

urlpatterns = [
    path("messages/", views.MessageCreate.as_view(), name="message-create"),
    path("search/", search_api.SearchView.as_view(), name="search"),
    path("reports/<str:name>/", reports_api.ReportView.as_view(), name="report"),
    path("business-hours/", insights_api.BusinessHoursView.as_view(), name="business-hours"),
    path("csat-settings/", insights_api.CsatSettingsView.as_view(), name="csat-settings"),
    path("events/", journeys_api.EventTrackView.as_view(), name="event-track"),
    path("webhook-event-types/", webhooks_api.WebhookEventTypeList.as_view(), name="webhook-event-types"),
    *router.urls,
]
