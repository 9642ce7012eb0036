# Build: docker build -t pulse .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# make image stamps the version pulse version prints; by hand:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t pulse .
ARG VERSION=dev
ARG LDFLAGS="-X main.version=${VERSION}"
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "${LDFLAGS}" -o /pulse ./cmd/pulse

FROM gcr.io/distroless/static-debian12
COPY --from=build /pulse /pulse
VOLUME /data
EXPOSE 8080 9092
ENTRYPOINT ["/pulse", "run", "--data-dir", "/data", "--http", "0.0.0.0:8080"]
